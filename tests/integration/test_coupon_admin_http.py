"""Coupon administration over real HTTP, and the wiring of validation (its rules: tests/unit/test_validation.py)."""

from __future__ import annotations

import uuid

import pytest

from coupon.adapters import keys
from harness.client import Api, coupon_body


def test_admin_creates_coupon_and_gate_is_primed(server: Api, admin_token: str, rdb) -> None:
    resp = server.call(
        "POST", "/api/coupon", admin_token, json=coupon_body(500, discountType="PERCENTAGE", discountValue=15)
    )
    assert resp.status_code == 201, resp.text
    coupon = resp.json()["data"]
    uuid.UUID(coupon["id"])
    assert coupon["status"] == "ACTIVE" and coupon["totalQuantity"] == 500 and coupon["discountValue"] == 15
    meta = rdb.hgetall(keys.meta(coupon["id"]))
    assert meta["total"] == "500" and meta["status"] == "ACTIVE" and int(meta["ends"]) > int(meta["starts"])
    assert rdb.get(keys.issued(coupon["id"])) == "0"


def test_coupon_detail_shows_live_stock(server: Api, admin_token: str) -> None:
    coupon = server.create_coupon(admin_token, 7)
    _, token = server.user_token()
    resp = server.call("GET", f"/api/coupon/{coupon['id']}", token)
    assert resp.status_code == 200
    assert resp.json()["data"]["stock"] == {"total": 7, "reserved": 0, "issued": 0, "remaining": 7}


def test_non_admin_cannot_create(server: Api) -> None:
    _, token = server.user_token()
    resp = server.call("POST", "/api/coupon", token, json=coupon_body())
    assert resp.status_code == 403 and resp.json()["errorMessage"]["code"] == "E1004"


def test_anonymous_cannot_create(server: Api) -> None:
    resp = server.call("POST", "/api/coupon", json=coupon_body())
    assert resp.status_code == 401


def test_unknown_coupon_is_404_and_bad_id_is_400(server: Api) -> None:
    _, token = server.user_token()
    resp = server.call("GET", f"/api/coupon/{uuid.uuid4()}", token)
    assert resp.status_code == 404 and resp.json()["errorMessage"]["code"] == "E3001"
    resp = server.call("GET", "/api/coupon/not-a-uuid", token)
    assert resp.status_code == 400 and resp.json()["errorMessage"]["code"] == "E4003"


# Each validation rule is tested once, in tests/unit/test_validation.py; this proves the HTTP wiring: 400 E4000 with
# every problem listed, unknown fields first.
def test_an_invalid_coupon_is_400_listing_every_problem(server: Api, admin_token: str) -> None:
    body = coupon_body(totalQuantity=True, color="red")
    del body["name"]
    resp = server.call("POST", "/api/coupon", admin_token, json=body)
    assert resp.status_code == 400, resp.text
    assert resp.json() == {
        "resultType": "ERROR",
        "data": None,
        "errorMessage": {
            "code": "E4000",
            "message": "Invalid fields: color, name, totalQuantity",
            "data": [
                {"field": "color", "reason": "unknown field"},
                {"field": "name", "reason": "is required"},
                {"field": "totalQuantity", "reason": "must be an integer"},
            ],
        },
    }


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json", "E4001"),
        (b"[1, 2]", "E4001"),
        (b"", "E4001"),
        (b'"just a string"', "E4001"),
        (b'{"name": "' + b"x" * 40_000 + b'"}', "E4002"),
    ],
    ids=["malformed", "array", "empty", "string", "oversized"],
)
def test_bad_bodies_are_400(server: Api, admin_token: str, raw: bytes, code: str) -> None:
    resp = server.call("POST", "/api/coupon", admin_token, data=raw, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and resp.json()["errorMessage"]["code"] == code


def test_unknown_route_and_method_keep_the_envelope(server: Api) -> None:
    resp = server.call("GET", "/api/nothing-here")
    assert resp.status_code == 404 and resp.json()["errorMessage"]["code"] == "E4004"
    resp = server.call("DELETE", "/api/auth/login")
    assert resp.status_code == 405 and resp.json()["errorMessage"]["code"] == "E4005"


@pytest.mark.slow
def test_create_coupon_cli(base_env, engine) -> None:
    from harness.invariants import scalar
    from tests.support.cli import flask_cli

    out = flask_cli(base_env, "create-coupon", "--name", "cli coupon", "--quantity", "42", "--type", "PIZZA")
    assert out.returncode == 0, out.stderr
    coupon_id = out.stdout.strip().splitlines()[-1]
    assert scalar(engine, "SELECT total_quantity FROM coupons WHERE id = :c", c=coupon_id) == 42
    bad = flask_cli(base_env, "create-coupon", "--name", "x", "--quantity", "0")
    assert bad.returncode == 1 and "E4000" in bad.stderr
