"""Account deletion and admin-only routes over real HTTP: a deleted user's still-valid token is refused
everywhere, and users can't reach admin routes."""

from __future__ import annotations

import redis

from coupon.adapters import keys
from harness.client import Api
from harness.invariants import scalar
from tests.support.cli import flask_cli


def _code(resp) -> str | None:
    return (resp.json().get("errorMessage") or {}).get("code")


def test_deleted_users_tokens_are_refused_at_once(server: Api, admin_token: str, engine, rdb: redis.Redis) -> None:
    coupon = server.create_coupon(admin_token, 5)
    user_id, token = server.user_token()
    assert server.call("GET", "/api/coupon/owned-coupons", token).status_code == 200

    resp = server.call("DELETE", f"/api/users/{user_id}", admin_token)
    assert resp.status_code == 200 and resp.json()["data"] == {"id": user_id, "deleted": True}, resp.text
    assert scalar(engine, "SELECT COUNT(*) FROM users WHERE id = :u", u=user_id) == 0

    # The token has not expired, and is refused on every authenticated route, the hot path included.
    for method, path in (
        ("GET", "/api/coupon/owned-coupons"),
        ("POST", f"/api/coupon/{coupon['id']}/issue"),
        ("GET", f"/api/coupon/{coupon['id']}/issue"),
        ("GET", f"/api/coupon/{coupon['id']}"),
    ):
        resp = server.call(method, path, token)
        assert (resp.status_code, _code(resp)) == (401, "E1006"), (method, path, resp.text)
    assert rdb.zscore(keys.participants(coupon["id"]), user_id) is None  # never reached the gate
    # The account can't log in again, and the marker outlives every token minted before it.
    assert 0 < rdb.ttl(keys.user_deleted(user_id)) <= 3600 + 60
    resp = server.call("DELETE", f"/api/users/{user_id}", admin_token)
    assert (resp.status_code, _code(resp)) == (404, "E2002")
    # Public routes ignore a dead token rather than refusing the request.
    assert server.call("GET", "/api/openapi.json", token).status_code == 200


def test_deleted_user_cannot_log_in(server: Api, admin_token: str) -> None:
    user = server.signup("leaving-user", "password-123")
    server.call("DELETE", f"/api/users/{user['id']}", admin_token)
    resp = server.call("POST", "/api/auth/login", json={"username": "leaving-user", "password": "password-123"})
    assert (resp.status_code, _code(resp)) == (401, "E1005")


def test_admin_cannot_delete_themselves_and_ids_are_validated(server: Api, admin_token: str) -> None:
    import jwt as pyjwt

    admin_id = pyjwt.decode(admin_token, options={"verify_signature": False})["sub"]
    resp = server.call("DELETE", f"/api/users/{admin_id}", admin_token)
    assert (resp.status_code, _code(resp)) == (409, "E2003")
    resp = server.call("DELETE", "/api/users/not-a-uuid", admin_token)
    assert (resp.status_code, _code(resp)) == (400, "E4003")


def test_admin_routes_are_refused_to_users(server: Api) -> None:
    victim_id, _ = server.user_token()
    _, token = server.user_token()
    for method, path, kwargs in (
        ("POST", "/api/coupon", {"json": {"name": "x"}}),
        ("DELETE", f"/api/users/{victim_id}", {}),
        ("GET", "/api/admin/failures", {}),
    ):
        resp = server.call(method, path, token, **kwargs)
        assert (resp.status_code, _code(resp)) == (403, "E1004"), (method, path, resp.text)
        assert server.call(method, path, **kwargs).status_code == 401
    assert server.call("GET", "/api/coupon/owned-coupons", token).status_code == 200


def test_failure_view_for_admins(server: Api, admin_token: str, engine) -> None:
    with engine.begin() as conn:
        import sqlalchemy as sa

        conn.execute(
            sa.text(
                "INSERT INTO failed_issued_coupons (coupon_id, user_id, payload, error, retry_count, is_resolved,"
                " status, created_at) VALUES ('c-1', 'u-1', '{}', 'boom', 5, 0, 'DEAD', NOW(6))"
            )
        )
    resp = server.call("GET", "/api/admin/failures?status=DEAD&limit=10", admin_token)
    data = resp.json()["data"]
    assert resp.status_code == 200 and data["counts"] == {"PENDING": 0, "RESOLVED": 0, "DEAD": 1}
    assert [(i["couponId"], i["status"], i["retryCount"]) for i in data["items"]] == [("c-1", "DEAD", 5)]
    for query in ("status=LOST", "limit=0", "limit=100000", "limit=abc", "colour=red"):
        resp = server.call("GET", f"/api/admin/failures?{query}", admin_token)
        assert (resp.status_code, _code(resp)) == (400, "E4000"), (query, resp.text)


def test_delete_user_cli(base_env, server: Api) -> None:
    user_id, token = server.user_token()
    assert server.call("GET", "/api/coupon/owned-coupons", token).status_code == 200
    out = flask_cli(base_env, "delete-user", user_id)
    assert out.returncode == 0, out.stderr
    resp = server.call("GET", "/api/coupon/owned-coupons", token)
    assert (resp.status_code, _code(resp)) == (401, "E1006")
    again = flask_cli(base_env, "delete-user", user_id)
    assert again.returncode == 1 and "E2002" in again.stderr
