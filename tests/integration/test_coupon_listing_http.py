"""GET /api/coupon over real HTTP: newest first with live stock, stable keyset pages while coupons are created, the
status and phase filters, what a USER may see, and 400s for bad query values."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from coupon.domain.commands import RankPosition
from coupon.http.cursors import encode_event_cursor, encode_rank_cursor
from harness.client import Api, iso_in
from harness.invariants import q


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return [c["id"] for c in items]


def _create(server: Api, admin_token: str, n: int, prefix: str) -> list[str]:
    return [server.create_coupon(admin_token, 10, name=f"{prefix}{i:02}")["id"] for i in range(n)]


def test_pages_are_stable_while_new_coupons_are_created(server: Api, admin_token: str) -> None:
    old = _create(server, admin_token, 25, "old-")  # oldest first
    expected = list(reversed(old))
    seen: list[str] = []
    cursor = None
    new: list[str] = []
    for page in range(3):
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        data = server.call("GET", "/api/coupon", admin_token, params=params).json()["data"]
        seen += _ids(data["items"])
        cursor = data["nextCursor"]
        # Coupons created between page fetches are newer than everything listed: they must not show up later.
        new += _create(server, admin_token, 3, f"new-{page}-")
    assert cursor is None and seen == expected, "a page skipped, repeated or reordered an item"
    fresh = server.call("GET", "/api/coupon", admin_token, params={"limit": 100}).json()["data"]
    assert _ids(fresh["items"]) == list(reversed(new)) + expected and fresh["nextCursor"] is None


def test_equal_creation_times_are_ordered_by_id_across_pages(server: Api, admin_token: str, engine: sa.Engine) -> None:
    ids = _create(server, admin_token, 7, "tie-")
    with engine.begin() as conn:  # the same created_at for all: only the id orders them
        conn.execute(sa.text("UPDATE coupons SET created_at = '2026-11-27 09:00:00.123456'"))
    pages = server.pages(admin_token, "/api/coupon", limit=2)
    assert [len(p) for p in pages] == [2, 2, 2, 1]
    assert [c["id"] for p in pages for c in p] == sorted(ids, reverse=True)


def test_the_order_has_its_index(engine: sa.Engine) -> None:
    rows = q(engine, "SHOW INDEX FROM coupons WHERE Key_name = 'ix_coupons_created'")
    assert [r.Column_name for r in sorted(rows, key=lambda r: r.Seq_in_index)] == ["created_at", "id"]
    rows = q(engine, "SHOW INDEX FROM issued_coupons WHERE Key_name = 'ix_issued_coupon_rank'")
    assert [r.Column_name for r in sorted(rows, key=lambda r: r.Seq_in_index)] == ["coupon_id", "rank"]


@pytest.fixture
def four_kinds(server: Api, admin_token: str) -> dict[str, str]:
    """One coupon per kind: live, upcoming, disabled (window open), ended; created in that order."""
    live = server.create_coupon(admin_token, 10, name="live")["id"]
    upcoming = server.create_coupon(
        admin_token, 10, name="upcoming", issueStartsAt=iso_in(hours=1), expiresAt=iso_in(hours=2)
    )["id"]
    disabled = server.create_coupon(admin_token, 10, name="disabled")["id"]
    server.patch_coupon(admin_token, disabled, status="DISABLED")
    ended = server.create_coupon(admin_token, 10, name="ended", issueStartsAt=iso_in(hours=-2))["id"]
    server.patch_coupon(admin_token, ended, expiresAt=iso_in(seconds=-1))
    return {"live": live, "upcoming": upcoming, "disabled": disabled, "ended": ended}


def _listed(server: Api, token: str, **params: Any) -> list[str]:
    resp = server.call("GET", "/api/coupon", token, params=params)
    assert resp.status_code == 200, resp.text
    return _ids(resp.json()["data"]["items"])


def test_filters_for_admins(server: Api, admin_token: str, four_kinds: dict[str, str]) -> None:
    k = four_kinds
    assert _listed(server, admin_token) == [k["ended"], k["disabled"], k["upcoming"], k["live"]]
    assert _listed(server, admin_token, status="DISABLED") == [k["disabled"]]
    assert _listed(server, admin_token, status="ACTIVE") == [k["ended"], k["upcoming"], k["live"]]
    # live = the window is open now, whatever the status
    assert _listed(server, admin_token, phase="live") == [k["disabled"], k["live"]]
    assert _listed(server, admin_token, phase="upcoming") == [k["upcoming"]]
    assert _listed(server, admin_token, phase="ended") == [k["ended"]]
    assert _listed(server, admin_token, status="ACTIVE", phase="live") == [k["live"]]
    items = server.call("GET", "/api/coupon", admin_token).json()["data"]["items"]
    assert {c["name"]: c["phase"] for c in items} == {
        "live": "live",
        "upcoming": "upcoming",
        "disabled": "live",
        "ended": "ended",
    }


def test_a_user_never_sees_a_disabled_or_ended_coupon(server: Api, four_kinds: dict[str, str]) -> None:
    k = four_kinds
    _, token = server.user_token()
    assert _listed(server, token) == [k["upcoming"], k["live"]]
    assert _listed(server, token, phase="live") == [k["live"]]
    assert _listed(server, token, phase="upcoming") == [k["upcoming"]]
    assert _listed(server, token, status="ACTIVE") == [k["upcoming"], k["live"]]
    # Asking for what a user may not see is an empty page, not an error.
    assert _listed(server, token, status="DISABLED") == []
    assert _listed(server, token, phase="ended") == []
    assert _listed(server, token, status="ACTIVE", phase="ended") == []
    # Paging never reaches them either.
    assert [c["id"] for p in server.pages(token, "/api/coupon", limit=1) for c in p] == [k["upcoming"], k["live"]]


def test_items_carry_the_live_stock_of_the_gate(server: Api, admin_token: str) -> None:
    coupon = server.create_coupon(admin_token, 5)
    for _ in range(3):
        _, token = server.user_token()
        assert server.call("POST", f"/api/coupon/{coupon['id']}/issue", token).status_code == 202
    [item] = server.call("GET", "/api/coupon", token).json()["data"]["items"]
    detail = server.call("GET", f"/api/coupon/{coupon['id']}", token).json()["data"]
    assert item["stock"] == detail["stock"] == {"total": 5, "reserved": 3, "issued": 0, "remaining": 2}


def test_a_gate_that_lost_its_meta_is_rebuilt_for_the_listing(server: Api, admin_token: str, rdb: Any) -> None:
    from coupon.adapters import keys

    coupon = server.create_coupon(admin_token, 5)
    rdb.delete(keys.meta(coupon["id"]))
    [item] = server.call("GET", "/api/coupon", admin_token).json()["data"]["items"]
    assert item["stock"]["total"] == 5 and rdb.hget(keys.meta(coupon["id"]), "total") == "5"


BAD_QUERIES = [
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"limit": "abc"}, "limit"),
    ({"limit": "-1"}, "limit"),
    ({"status": "active"}, "status"),
    ({"status": "GONE"}, "status"),
    ({"phase": "LIVE"}, "phase"),
    ({"phase": "soon"}, "phase"),
    ({"cursor": "garbage!"}, "cursor"),
    ({"cursor": ""}, "cursor"),
    ({"cursor": "bm90IGpzb24"}, "cursor"),  # base64url of "not json"
    ({"cursor": encode_rank_cursor(RankPosition(1, 1))}, "cursor"),  # another list's cursors
    ({"cursor": encode_event_cursor(5)}, "cursor"),
    ({"cursor": "x" * 300}, "cursor"),
    ({"sort": "name"}, "sort"),
]


@pytest.mark.parametrize(("params", "field"), BAD_QUERIES, ids=[f"{f}-{i}" for i, (_, f) in enumerate(BAD_QUERIES)])
def test_bad_listing_queries_are_400(server: Api, admin_token: str, params: dict[str, str], field: str) -> None:
    resp = server.call("GET", "/api/coupon", admin_token, params=params)
    assert resp.status_code == 400, resp.text
    err = resp.json()["errorMessage"]
    assert err["code"] == "E4000" and [p["field"] for p in err["data"]] == [field], err


def test_every_problem_of_a_query_is_listed_at_once(server: Api) -> None:
    _, token = server.user_token()
    resp = server.call("GET", "/api/coupon", token, params={"limit": "0", "phase": "x", "cursor": "?"})
    assert resp.status_code == 400
    assert sorted(p["field"] for p in resp.json()["errorMessage"]["data"]) == ["cursor", "limit", "phase"]


@pytest.mark.parametrize("path", ["issued", "events"])
def test_bad_ledger_and_event_queries_are_400(server: Api, admin_token: str, path: str) -> None:
    coupon = server.create_coupon(admin_token, 5)
    base = f"/api/coupon/{coupon['id']}/{path}"
    for params, field in [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001" if path == "issued" else "101"}, "limit"),
        ({"cursor": "nope"}, "cursor"),
        ({"cursor": encode_event_cursor(3) if path == "issued" else encode_rank_cursor(RankPosition(1, 1))}, "cursor"),
        ({"status": "ACTIVE"}, "status"),
    ]:
        resp = server.call("GET", base, admin_token, params=params)
        assert resp.status_code == 400 and resp.json()["errorMessage"]["data"][0]["field"] == field, (params, resp.text)
    assert server.call("GET", f"/api/coupon/{uuid.uuid4()}/{path}", admin_token).json()["errorMessage"]["code"] == (
        "E3001"
    )
    _, token = server.user_token()
    assert server.call("GET", base, token).status_code == 403
