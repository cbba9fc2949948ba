"""PATCH /api/coupon/{id} over real HTTP: validation, the reply, and the gate matching the DB after concurrent
PATCHes and after a gate rebuild racing a PATCH."""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from coupon.adapters import keys
from harness.client import Api, burst, coupon_body, iso_in
from harness.invariants import assert_gate_matches_db, q, scalar


def _events(engine: sa.Engine, coupon_id: str) -> list[dict[str, Any]]:
    rows = q(engine, "SELECT action, actor, changes FROM coupon_events WHERE coupon_id = :c ORDER BY id", c=coupon_id)
    return [{"action": r.action, "actor": r.actor, "changes": json.loads(r.changes)} for r in rows]


def test_patch_changes_db_and_gate_and_answers_the_coupon(server: Api, admin_token: str, engine, rdb) -> None:
    coupon = server.create_coupon(admin_token, 10)
    expires = iso_in(days=3)
    resp = server.call(
        "PATCH",
        f"/api/coupon/{coupon['id']}",
        admin_token,
        json={"totalQuantity": 25, "expiresAt": expires, "name": "  renamed  ", "status": "DISABLED"},
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()["data"]
    assert data["totalQuantity"] == 25 and data["name"] == "renamed" and data["status"] == "DISABLED"
    assert data["stock"] == {"total": 25, "reserved": 0, "issued": 0, "remaining": 25} and data["phase"] == "live"
    meta = assert_gate_matches_db(engine, rdb, coupon["id"])
    assert meta["total"] == "25" and meta["status"] == "DISABLED"
    actions = [e["action"] for e in _events(engine, coupon["id"])]
    assert actions == ["created", "disabled"]


def test_a_patch_that_changes_nothing_writes_nothing(server: Api, admin_token: str, engine) -> None:
    coupon = server.create_coupon(admin_token, 10)
    again = server.patch_coupon(admin_token, coupon["id"], totalQuantity=10, status="ACTIVE", name=coupon["name"])
    assert again["totalQuantity"] == 10
    assert [e["action"] for e in _events(engine, coupon["id"])] == ["created"]


INVALID_PATCHES = [
    ("empty object", {}, "body"),
    ("unknown field", {"color": "red"}, "color"),
    ("read-only field", {"type": "PIZZA"}, "type"),
    ("null", {"name": None}, "name"),
    ("bad status", {"status": "PAUSED"}, "status"),
    ("status not a string", {"status": 1}, "status"),
    ("not a date", {"expiresAt": "tomorrow"}, "expiresAt"),
    ("year out of range", {"expiresAt": "3001-01-01T00:00:00Z"}, "expiresAt"),
    ("quantity zero", {"totalQuantity": 0}, "totalQuantity"),
    ("quantity huge", {"totalQuantity": 10_000_001}, "totalQuantity"),
    ("quantity bool", {"totalQuantity": True}, "totalQuantity"),
    ("quantity float", {"totalQuantity": 5.5}, "totalQuantity"),
    ("quantity string", {"totalQuantity": "5"}, "totalQuantity"),
    ("blank name", {"name": "   "}, "name"),
    ("long name", {"name": "x" * 101}, "name"),
    ("window inside the body", {"issueStartsAt": iso_in(days=2), "expiresAt": iso_in(days=1)}, "expiresAt"),
    # Against the stored other end of the window (the service checks it under the row lock).
    ("expiry before the stored start", {"expiresAt": iso_in(days=-30)}, "expiresAt"),
    ("start after the stored expiry", {"issueStartsAt": iso_in(days=30)}, "issueStartsAt"),
]


@pytest.mark.parametrize(("case", "body", "field"), INVALID_PATCHES, ids=[c[0] for c in INVALID_PATCHES])
def test_invalid_patch_is_400_and_changes_nothing(
    server: Api, admin_token: str, engine, rdb, case: str, body: dict[str, Any], field: str
) -> None:
    coupon = server.create_coupon(admin_token, 10)
    before = rdb.hgetall(keys.meta(coupon["id"]))
    resp = server.call("PATCH", f"/api/coupon/{coupon['id']}", admin_token, json=body)
    assert resp.status_code == 400, resp.text
    err = resp.json()["errorMessage"]
    assert err["code"] == "E4000" and field in [p["field"] for p in err["data"]], err
    assert rdb.hgetall(keys.meta(coupon["id"])) == before
    assert_gate_matches_db(engine, rdb, coupon["id"])
    assert len(_events(engine, coupon["id"])) == 1


def test_patch_refusals(server: Api, admin_token: str) -> None:
    coupon = server.create_coupon(admin_token, 10)
    path = f"/api/coupon/{coupon['id']}"
    empty = server.call("PATCH", path, admin_token, data=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 400 and empty.json()["errorMessage"]["code"] == "E4001"
    array = server.call("PATCH", path, admin_token, data=b"[]", headers={"Content-Type": "application/json"})
    assert array.status_code == 400 and array.json()["errorMessage"]["code"] == "E4001"
    form = server.call("PATCH", path, admin_token, data=b"status=DISABLED")
    assert form.status_code == 415 and form.json()["errorMessage"]["code"] == "E4006"
    missing = server.call("PATCH", f"/api/coupon/{uuid.uuid4()}", admin_token, json={"status": "DISABLED"})
    assert missing.status_code == 404 and missing.json()["errorMessage"]["code"] == "E3001"
    bad_id = server.call("PATCH", "/api/coupon/not-a-uuid", admin_token, json={"status": "DISABLED"})
    assert bad_id.status_code == 400 and bad_id.json()["errorMessage"]["code"] == "E4003"
    _, user = server.user_token()
    forbidden = server.call("PATCH", path, user, json={"status": "DISABLED"})
    assert forbidden.status_code == 403 and forbidden.json()["errorMessage"]["code"] == "E1004"
    assert server.call("PATCH", path, json={"status": "DISABLED"}).status_code == 401


def test_lowering_below_the_reservations_is_409_and_changes_nothing(server: Api, admin_token: str, engine, rdb) -> None:
    coupon = server.create_coupon(admin_token, 10)
    for _ in range(4):
        _, token = server.user_token()
        assert server.call("POST", f"/api/coupon/{coupon['id']}/issue", token).status_code == 202
    before = rdb.hgetall(keys.meta(coupon["id"]))
    resp = server.call("PATCH", f"/api/coupon/{coupon['id']}", admin_token, json={"totalQuantity": 3, "name": "x"})
    assert resp.status_code == 409, resp.text
    err = resp.json()["errorMessage"]
    assert err["code"] == "E3010" and err["data"] == {"reserved": 4, "issued": 0}
    assert rdb.hgetall(keys.meta(coupon["id"])) == before
    assert scalar(engine, "SELECT total_quantity FROM coupons WHERE id = :c", c=coupon["id"]) == 10
    assert scalar(engine, "SELECT name FROM coupons WHERE id = :c", c=coupon["id"]) == coupon["name"]
    assert len(_events(engine, coupon["id"])) == 1
    # Down to exactly what is reserved is fine: sold out.
    assert server.patch_coupon(admin_token, coupon["id"], totalQuantity=4)["stock"]["remaining"] == 0
    _, token = server.user_token()
    assert server.call("POST", f"/api/coupon/{coupon['id']}/issue", token).json()["errorMessage"]["code"] == "E3003"


def test_lowering_below_the_db_issued_count_is_409(server: Api, admin_token: str, engine, rdb) -> None:
    """The DB's issued rows count even when the gate knows fewer (e.g. after Redis lost reservations)."""
    coupon = server.create_coupon(admin_token, 10)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE coupons SET issued_count = 6 WHERE id = :c"), {"c": coupon["id"]})
    resp = server.call("PATCH", f"/api/coupon/{coupon['id']}", admin_token, json={"totalQuantity": 5})
    assert resp.status_code == 409 and resp.json()["errorMessage"]["data"] == {"reserved": 0, "issued": 6}
    assert rdb.hget(keys.meta(coupon["id"]), "total") == "10"


def test_concurrent_patches_leave_the_gate_equal_to_the_db(server: Api, admin_token: str, engine, rdb) -> None:
    coupon = server.create_coupon(admin_token, 100)
    path = f"/api/coupon/{coupon['id']}"
    rounds, threads = 5, 8
    for r in range(rounds):
        barrier = threading.Barrier(threads)

        def patch(i: int, r: int = r, barrier: threading.Barrier = barrier) -> int:
            body = {
                "totalQuantity": 200 + 10 * r + i,
                "status": "DISABLED" if i % 2 else "ACTIVE",
                "expiresAt": iso_in(days=1 + i),
            }
            session = Api(server.base)
            barrier.wait()
            return session.call("PATCH", path, admin_token, json=body).status_code

        with ThreadPoolExecutor(threads) as pool:
            statuses = list(pool.map(patch, range(threads)))
        assert statuses == [200] * threads
        meta = assert_gate_matches_db(engine, rdb, coupon["id"])
        # The last committed change is the one that stays, and it is the newest event.
        last = _events(engine, coupon["id"])[-1]
        assert last["changes"]["totalQuantity"]["to"] == int(meta["total"])
    assert len(_events(engine, coupon["id"])) == 1 + rounds * threads


@pytest.mark.slow
def test_a_rebuild_racing_a_patch_never_brings_back_old_values(server: Api, admin_token: str, engine, rdb) -> None:
    coupon = server.create_coupon(admin_token, 1000)
    cid = coupon["id"]
    _, token = server.user_token()
    rng = random.Random(16)
    for r in range(8):
        rdb.delete(keys.meta(cid))  # the next request rebuilds the gate from the DB
        body = {"totalQuantity": 1000 + r, "expiresAt": iso_in(days=2 + r)}

        def patch(body: dict[str, Any] = body) -> int:
            time.sleep(rng.uniform(0, 0.4))
            return Api(server.base).call("PATCH", f"/api/coupon/{cid}", admin_token, json=body).status_code

        with ThreadPoolExecutor(2) as pool:
            patched = pool.submit(patch)
            rebuilt = pool.submit(burst, server.base, [("GET", f"/api/coupon/{cid}", token)] * 40)
            assert patched.result() == 200
            assert {r[0] for r in rebuilt.result()} == {200}
        meta = assert_gate_matches_db(engine, rdb, cid)
        assert meta["total"] == str(1000 + r), f"round {r}: the rebuild brought back {meta}"


def test_created_coupons_record_who_created_them(server: Api, admin_token: str, engine) -> None:
    coupon = server.call("POST", "/api/coupon", admin_token, json=coupon_body(7)).json()["data"]
    [event] = _events(engine, coupon["id"])
    assert event["action"] == "created"
    assert scalar(engine, "SELECT role FROM users WHERE id = :u", u=event["actor"]) == "ADMIN"
    assert event["changes"]["totalQuantity"] == {"from": None, "to": 7}
    assert event["changes"]["status"] == {"from": None, "to": "ACTIVE"}
