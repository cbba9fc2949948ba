"""Admin changes during a live sale, end to end: real gunicorn, Redis gate (standalone and Cluster), Kafka, a consumer
process and MariaDB. The kill switch, closing and extending the window, raising and lowering the quantity; after
each run the consumer drains and the design's invariants hold."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from coupon.adapters import keys
from harness.client import Api, burst, iso_in
from harness.invariants import assert_gate_matches_db, check_invariants, issued_rows, wait_drained
from harness.processes import wait_for

# Live sales with a consumer: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow


def _issue(api: Api, coupon_id: str, users: list[tuple[str, str]]) -> list[list[Any]]:
    return burst(api.base, [("POST", f"/api/coupon/{coupon_id}/issue", t) for _, t in users])


def _codes(results: list[list[Any]]) -> Counter[tuple[int, str | None]]:
    return Counter((r[0], r[1]) for r in results)


def _winners(users: list[tuple[str, str]], results: list[list[Any]]) -> list[str]:
    return [u for (u, _), r in zip(users, results) if r[0] == 202]


@pytest.mark.slow
def test_the_kill_switch_stops_a_live_sale_at_once_and_enabling_resumes_it(
    api: Api, admin_token: str, mint, engine, rdb
) -> None:
    coupon = api.create_coupon(admin_token, 100_000)
    cid = coupon["id"]
    users = mint(5100)
    opening, rush, later = users[:300], users[300:3300], users[3300:]
    waves_off, waves_on = (
        [later[i : i + 300] for i in range(0, 900, 300)],
        [later[i : i + 300] for i in range(900, 1800, 300)],
    )
    first = _issue(api, cid, opening)
    assert _codes(first) == {(202, None): 300}

    # 3,000 clients at once; the switch is thrown once the rush has reserved 50 units (under this load the PATCH
    # itself waits its turn in the API's workers, so the rush goes on while it is on its way).
    with ThreadPoolExecutor(1) as pool:
        rushing = pool.submit(_issue, api, cid, rush)
        wait_for(lambda: int(rdb.get(keys.issued(cid))) > 350 or rushing.done(), 60, "the rush to reserve", 0.002)
        sent = time.monotonic()
        off = api.call("PATCH", f"/api/coupon/{cid}", admin_token, json={"status": "DISABLED"})
        patch_ms = (time.monotonic() - sent) * 1000
        switched = int(rdb.get(keys.issued(cid)))
        rush_results = rushing.result()
    assert off.status_code == 200 and off.json()["data"]["status"] == "DISABLED", off.text
    codes = _codes(rush_results)
    assert set(codes) == {(202, None), (409, "E3006")}, f"the switch did not land mid-rush: {codes}"
    # Every 202 of the rush was reserved before the PATCH returned; nothing was reserved after it.
    assert switched == 300 + codes[(202, None)] == int(rdb.get(keys.issued(cid)))

    for wave in waves_off:
        assert _codes(_issue(api, cid, wave)) == {(409, "E3006"): len(wave)}
    assert int(rdb.get(keys.issued(cid))) == switched

    on = api.call("PATCH", f"/api/coupon/{cid}", admin_token, json={"status": "ACTIVE"})
    assert on.status_code == 200 and on.json()["data"]["status"] == "ACTIVE", on.text
    resumed = [_issue(api, cid, wave) for wave in waves_on]
    for results in resumed:
        assert _codes(results) == {(202, None): len(results)}

    winners = _winners(opening, first) + _winners(rush, rush_results)
    winners += [u for wave, results in zip(waves_on, resumed) for u in _winners(wave, results)]
    assert len(winners) == len(set(winners)) == switched + 900
    wait_drained(engine, cid, len(winners))
    counts = check_invariants(engine, rdb, cid, winners)
    assert counts["issued"] == len(winners) == int(rdb.get(keys.issued(cid)))
    assert_gate_matches_db(engine, rdb, cid)
    print(
        f"kill switch: the rush of {len(rush)} had {codes[(202, None)]} accepted before the switch and"
        f" {codes[(409, 'E3006')]} refused after it; {len(waves_off) * 300} later requests all E3006,"
        f" {len(waves_on) * 300} after re-enabling all 202; {len(winners)} issued; the PATCH took {patch_ms:.0f} ms"
    )


def test_closing_early_then_extending_the_window(api: Api, admin_token: str, mint, engine, rdb) -> None:
    coupon = api.create_coupon(admin_token, 100)
    cid = coupon["id"]
    users = mint(30)
    first = _issue(api, cid, users[:10])
    assert _codes(first) == {(202, None): 10}
    closed = api.patch_coupon(admin_token, cid, expiresAt=iso_in(seconds=0))
    assert closed["phase"] == "ended"
    after_close = _issue(api, cid, users[10:20])
    assert _codes(after_close) == {(409, "E3005"): 10}
    extended = api.patch_coupon(admin_token, cid, expiresAt=iso_in(days=1))
    assert extended["phase"] == "live"
    after_extend = _issue(api, cid, users[20:])
    assert _codes(after_extend) == {(202, None): 10}
    winners = _winners(users[:10], first) + _winners(users[20:], after_extend)
    wait_drained(engine, cid, 20)
    check_invariants(engine, rdb, cid, winners)
    assert_gate_matches_db(engine, rdb, cid)
    events = api.call("GET", f"/api/coupon/{cid}/events", admin_token).json()["data"]["items"]
    assert [e["action"] for e in events] == ["updated", "closed", "created"]


def test_raising_and_lowering_the_quantity(api: Api, admin_token: str, mint, engine, rdb) -> None:
    coupon = api.create_coupon(admin_token, 5)
    cid = coupon["id"]
    users = mint(40)
    first = _issue(api, cid, users[:10])
    assert _codes(first) == {(202, None): 5, (409, "E3003"): 5}
    raised = api.patch_coupon(admin_token, cid, totalQuantity=8)
    assert raised["stock"] == {"total": 8, "reserved": 5, "issued": raised["stock"]["issued"], "remaining": 3}
    second = _issue(api, cid, users[10:20])
    assert _codes(second) == {(202, None): 3, (409, "E3003"): 7}, "the raise let in more or fewer than 3"
    winners = _winners(users[:10], first) + _winners(users[10:20], second)
    # Below what is reserved: refused, and neither the gate nor the DB moves.
    meta = rdb.hgetall(keys.meta(cid))
    low = api.call("PATCH", f"/api/coupon/{cid}", admin_token, json={"totalQuantity": 6})
    assert low.status_code == 409, low.text
    err = low.json()["errorMessage"]
    assert err["code"] == "E3010" and err["data"]["reserved"] == 8 and 0 <= err["data"]["issued"] <= 8
    assert rdb.hgetall(keys.meta(cid)) == meta
    assert_gate_matches_db(engine, rdb, cid)
    wait_drained(engine, cid, 8)
    check_invariants(engine, rdb, cid, winners)
    # A valid lowering of a coupon with stock left: the new total is exactly what can be had.
    other = api.create_coupon(admin_token, 10)
    early = _issue(api, other["id"], users[20:23])
    assert _codes(early) == {(202, None): 3}
    lowered = api.patch_coupon(admin_token, other["id"], totalQuantity=5)
    assert lowered["stock"]["total"] == 5 and lowered["stock"]["remaining"] == 2
    late = _issue(api, other["id"], users[23:])
    assert _codes(late) == {(202, None): 2, (409, "E3003"): 15}
    other_winners = _winners(users[20:23], early) + _winners(users[23:], late)
    wait_drained(engine, other["id"], 5)
    assert issued_rows(engine, other["id"]) == 5
    check_invariants(engine, rdb, other["id"], other_winners)
    assert_gate_matches_db(engine, rdb, other["id"])


@pytest.mark.parametrize("redis_mode", ["cluster"], indirect=True)
def test_a_patch_reaches_the_gate_on_a_redis_cluster(api: Api, admin_token: str, mint, engine, rdb) -> None:
    coupon = api.create_coupon(admin_token, 4)
    cid = coupon["id"]
    assert rdb.hget(keys.meta(cid), "total") == "4"  # the gate lives on the cluster
    users = mint(30)
    first = _issue(api, cid, users[:6])
    assert _codes(first) == {(202, None): 4, (409, "E3003"): 2}
    api.patch_coupon(admin_token, cid, status="DISABLED")
    assert rdb.hget(keys.meta(cid), "status") == "DISABLED"
    assert _codes(_issue(api, cid, users[6:10])) == {(409, "E3006"): 4}
    api.patch_coupon(admin_token, cid, status="ACTIVE", totalQuantity=10)
    second = _issue(api, cid, users[10:20])
    assert _codes(second) == {(202, None): 6, (409, "E3003"): 4}
    low = api.call("PATCH", f"/api/coupon/{cid}", admin_token, json={"totalQuantity": 9})
    assert low.json()["errorMessage"]["data"]["reserved"] == 10
    # The gate loses its meta; the PATCH then changes only the DB, and the rebuild the next request runs installs
    # the changed values, not the created ones.
    wait_drained(engine, cid, 10)
    rdb.delete(keys.meta(cid))
    api.patch_coupon(admin_token, cid, totalQuantity=12)
    assert not rdb.exists(keys.meta(cid))
    third = _issue(api, cid, users[20:])
    assert _codes(third) == {(202, None): 2, (409, "E3003"): 8}
    assert rdb.hget(keys.meta(cid), "total") == "12"
    winners = _winners(users[:6], first) + _winners(users[10:20], second) + _winners(users[20:], third)
    wait_drained(engine, cid, len(winners))
    assert_gate_matches_db(engine, rdb, cid)
    check_invariants(engine, rdb, cid, winners)
