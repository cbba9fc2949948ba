"""Refresh and logout over real HTTP: login gives both tokens, refresh rotates single-use tokens, a replayed
refresh token revokes its whole family, logout revokes the session and the access token (the issue route too)."""

from __future__ import annotations

from typing import Any

import redis

from coupon.adapters import keys
from harness.client import Api
from harness.invariants import q, scalar


def _code(resp) -> str | None:
    return (resp.json().get("errorMessage") or {}).get("code")


def _login(server: Api, password: str = "password-123") -> dict[str, Any]:
    user = server.signup(password=password)
    resp = server.call("POST", "/api/auth/login", json={"username": user["username"], "password": password})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def _refresh(server: Api, token: Any) -> Any:
    return server.call("POST", "/api/auth/refresh", json={"refreshToken": token})


def _owned(server: Api, access: str) -> tuple[int, str | None]:
    resp = server.call("GET", "/api/coupon/owned-coupons", access)
    return resp.status_code, _code(resp)


def test_login_gives_an_access_and_a_refresh_token_stored_only_as_a_digest(server: Api, engine) -> None:
    data = _login(server)
    assert data["accessToken"] and data["expiresIn"] > 0
    assert len(data["refreshToken"]) >= 43 and data["refreshExpiresIn"] == 14 * 24 * 3600
    rows = q(
        engine,
        "SELECT token_hash, used_at, revoked_at, expires_at > UTC_TIMESTAMP() FROM refresh_tokens WHERE user_id = :u",
        u=data["id"],
    )
    assert len(rows) == 1
    stored, used, revoked, live = rows[0]
    assert stored != data["refreshToken"] and data["refreshToken"] not in stored and len(stored) == 64
    assert (used, revoked, live) == (None, None, 1)


def test_refresh_rotates_and_each_refresh_token_works_once(server: Api, engine) -> None:
    first = _login(server)
    resp = _refresh(server, first["refreshToken"])
    assert resp.status_code == 200, resp.text
    second = resp.json()["data"]
    assert second["id"] == first["id"] and second["role"] == "USER"
    assert second["refreshToken"] != first["refreshToken"] and second["accessToken"] != first["accessToken"]
    assert _owned(server, second["accessToken"]) == (200, None)
    third = _refresh(server, second["refreshToken"]).json()["data"]
    assert _owned(server, third["accessToken"]) == (200, None)
    # One family, a chain: each used row names the row that replaced it.
    rows = q(
        engine,
        "SELECT id, family_id, used_at IS NOT NULL, replaced_by FROM refresh_tokens WHERE user_id = :u"
        " ORDER BY created_at",
        u=first["id"],
    )
    assert len(rows) == 3 and len({r[1] for r in rows}) == 1
    assert [r[2] for r in rows] == [1, 1, 0]
    assert rows[0][3] == rows[1][0] and rows[1][3] == rows[2][0] and rows[2][3] is None


def test_a_replayed_refresh_token_revokes_the_whole_family(server: Api, engine) -> None:
    first = _login(server)
    other_session = _login(server)  # another user's session is not touched
    second = _refresh(server, first["refreshToken"]).json()["data"]

    replay = _refresh(server, first["refreshToken"])
    assert (replay.status_code, _code(replay)) == (401, "E1008"), replay.text
    # The thief may hold the newest token, the owner the old one: neither works now.
    newest = _refresh(server, second["refreshToken"])
    assert (newest.status_code, _code(newest)) == (401, "E1007"), newest.text
    assert (
        scalar(engine, "SELECT COUNT(*) FROM refresh_tokens WHERE user_id = :u AND revoked_at IS NULL", u=first["id"])
        == 0
    )
    assert _refresh(server, other_session["refreshToken"]).status_code == 200


def test_logout_revokes_the_refresh_token_and_the_access_token_everywhere(
    server: Api, admin_token: str, rdb: redis.Redis
) -> None:
    coupon = server.create_coupon(admin_token, 5)
    session = _login(server)
    access = session["accessToken"]
    resp = server.call("POST", "/api/auth/logout", access, json={"refreshToken": session["refreshToken"]})
    assert resp.status_code == 200 and resp.json()["data"] == {"loggedOut": True}, resp.text

    for method, path in (
        ("GET", "/api/coupon/owned-coupons"),
        ("POST", f"/api/coupon/{coupon['id']}/issue"),
        ("GET", f"/api/coupon/{coupon['id']}"),
        ("POST", "/api/auth/logout"),
    ):
        resp = server.call(method, path, access, json={"refreshToken": session["refreshToken"]})
        assert (resp.status_code, _code(resp)) == (401, "E1009"), (method, path, resp.text)
    assert rdb.zscore(keys.participants(coupon["id"]), session["id"]) is None  # the gate never saw it
    refreshed = _refresh(server, session["refreshToken"])
    assert (refreshed.status_code, _code(refreshed)) == (401, "E1007"), refreshed.text
    # The marker lives as long as the token could, no longer.
    ttls = [rdb.ttl(k) for k in rdb.scan_iter(match=f"rl:{{user:{session['id']}}}:revoked:*")]
    assert len(ttls) == 1 and 0 < ttls[0] <= 3600


def test_logout_ends_only_its_own_session(server: Api) -> None:
    password = "password-123"
    user = server.signup(password=password)
    creds = {"username": user["username"], "password": password}
    one, two = (server.call("POST", "/api/auth/login", json=creds).json()["data"] for _ in range(2))
    assert (
        server.call(
            "POST", "/api/auth/logout", one["accessToken"], json={"refreshToken": one["refreshToken"]}
        ).status_code
        == 200
    )
    assert _owned(server, two["accessToken"]) == (200, None)
    assert _refresh(server, two["refreshToken"]).status_code == 200


def test_logout_with_someone_elses_or_a_garbage_refresh_token_is_401_and_revokes_nothing(server: Api) -> None:
    mine, theirs = _login(server), _login(server)
    for token in (theirs["refreshToken"], "garbage"):
        resp = server.call("POST", "/api/auth/logout", mine["accessToken"], json={"refreshToken": token})
        assert (resp.status_code, _code(resp)) == (401, "E1007"), resp.text
    assert _owned(server, mine["accessToken"]) == (200, None)
    assert _refresh(server, theirs["refreshToken"]).status_code == 200
    assert server.call("POST", "/api/auth/logout", json={"refreshToken": mine["refreshToken"]}).status_code == 401


def test_expired_unknown_and_malformed_refresh_tokens_are_refused_not_500(server: Api, engine) -> None:
    session = _login(server)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE refresh_tokens SET expires_at = UTC_TIMESTAMP() - INTERVAL 1 SECOND WHERE user_id = %s",
            (session["id"],),
        )
    for token in (session["refreshToken"], "not-a-token", session["accessToken"][:128], "x" * 128, "é"):
        resp = _refresh(server, token)
        assert (resp.status_code, _code(resp)) == (401, "E1007"), (token, resp.text)
    for body in (
        {"refreshToken": 42},
        {"refreshToken": ""},
        {"refreshToken": "x" * 129},
        {},
        {"refreshToken": "x", "extra": 1},
    ):
        resp = server.call("POST", "/api/auth/refresh", json=body)
        assert (resp.status_code, _code(resp)) == (400, "E4000"), (body, resp.text)


def test_a_deleted_accounts_refresh_token_is_refused(server: Api, admin_token: str) -> None:
    session = _login(server)
    assert server.call("DELETE", f"/api/users/{session['id']}", admin_token).status_code == 200
    resp = _refresh(server, session["refreshToken"])
    assert (resp.status_code, _code(resp)) == (401, "E1007"), resp.text


def test_concurrent_refreshes_of_one_token_leave_at_most_one_winner(server: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    session = _login(server)
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda _: _refresh(Api(server.base), session["refreshToken"]).status_code, range(8)))
    assert codes.count(200) <= 1 and all(c in (200, 401) for c in codes), codes
