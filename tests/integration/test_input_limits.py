"""Hostile input over real HTTP: every case is a 4xx with a stable code, never a 500."""

from __future__ import annotations

import pytest

from harness.client import Api


def _code(resp) -> str | None:
    return (resp.json().get("errorMessage") or {}).get("code")


JSON = {"Content-Type": "application/json"}

BODIES = [
    ("invalid utf-8", b'{"username": "\xff\xfe", "password": "password-1"}', JSON, 400, "E4001"),
    ("lone surrogate", b'{"username": "\\ud800", "password": "password-1"}', JSON, 400, "E4001"),
    ("deeply nested", b'{"username": ' + b"[" * 5000 + b"]" * 5000 + b"}", JSON, 400, "E4001"),
    ("NaN", b'{"username": NaN, "password": "password-1"}', JSON, 400, "E4001"),
    ("number too big for a double", b'{"username": 1e999, "password": "password-1"}', JSON, 400, "E4001"),
    ("trailing garbage", b'{"username": "abc", "password": "password-1"} x', JSON, 400, "E4001"),
    (
        "form body",
        b"username=abc&password=password-1",
        {"Content-Type": "application/x-www-form-urlencoded"},
        415,
        "E4006",
    ),
    ("text body", b'{"username": "abc", "password": "password-1"}', {"Content-Type": "text/plain"}, 415, "E4006"),
    ("no content type", b'{"username": "abc", "password": "password-1"}', {}, 415, "E4006"),
    ("over the body cap", b'{"username": "' + b"a" * 20_000 + b'"}', JSON, 400, "E4002"),
]


@pytest.mark.parametrize(("case", "raw", "headers", "status", "code"), BODIES, ids=[b[0] for b in BODIES])
def test_hostile_signup_bodies(server: Api, case: str, raw: bytes, headers: dict, status: int, code: str) -> None:
    resp = server.call("POST", "/api/users/signup", data=raw, headers=dict(headers))
    assert (resp.status_code, _code(resp)) == (status, code), resp.text


@pytest.mark.parametrize("raw_id", ["1", "x" * 300, "0f9995ef-xxxx-4c1d-9a7b-2c3d4e5f6a7b", "%00", "'; DROP TABLE"])
def test_ids_are_validated(server: Api, raw_id: str) -> None:
    _, token = server.user_token()
    for method, path in (
        ("GET", "/api/coupon/{}"),
        ("POST", "/api/coupon/{}/issue"),
        ("GET", "/api/coupon/{}/issue"),
        ("POST", "/api/coupon/{}/usage"),
    ):
        resp = server.call(method, path.format(raw_id), token)
        assert (resp.status_code, _code(resp)) == (400, "E4003"), (method, raw_id, resp.text)


def test_oversized_and_odd_tokens_are_401(server: Api) -> None:
    for token in ("a" * 5_000, "é.é.é", "a.b.c", "..", "Bearer"):
        resp = server.call("GET", "/api/coupon/owned-coupons", token)
        assert (resp.status_code, _code(resp)) == (401, "E1002"), (token[:20], resp.text)
    resp = server.call("GET", "/api/coupon/owned-coupons", headers={"Authorization": "Basic YTpi"})
    assert (resp.status_code, _code(resp)) == (401, "E1001")
    # A header over gunicorn's 8 KiB field cap never reaches the app: gunicorn answers 4xx itself.
    resp = server.call("GET", "/api/coupon/owned-coupons", "a" * 10_000)
    assert 400 <= resp.status_code < 500


def test_bodies_on_body_less_routes_are_ignored(server: Api, admin_token: str) -> None:
    coupon = server.create_coupon(admin_token, 2)
    _, token = server.user_token()
    resp = server.call(
        "POST", f"/api/coupon/{coupon['id']}/issue", token, data=b"\xff" * 1000, headers={"Content-Type": "text/plain"}
    )
    assert resp.status_code == 202, resp.text
