"""The atomicity argument of coupon/services/lifecycle.py, step by step against the real DB and Redis (in-process,
so each interleaving can be forced): the rebuild and a change serialize on the coupon row lock, and a change that
fails after its gate write leaves the gate equal to the DB."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from coupon import resources
from coupon.adapters import keys
from coupon.adapters.gate import Gate, GateSnapshot, MetaUpdateResult
from coupon.domain.commands import CouponPatch
from coupon.domain.errors import RedisUnavailable
from coupon.domain.models import Coupon
from coupon.domain.vocabulary import CouponStatus, utcnow
from coupon.extensions import db
from coupon.http.parsing import parse_coupon_draft
from coupon.services import catalog, gate_recovery, lifecycle
from harness.client import coupon_body
from harness.invariants import assert_gate_matches_db, scalar


@pytest.fixture
def gate(app: Any) -> Gate:
    return resources.of(app).gate


@pytest.fixture
def coupon(app: Any, gate: Gate) -> Coupon:
    return catalog.create_coupon(db.session, gate, parse_coupon_draft(coupon_body(10), utcnow()), "test")


def _rebuild(app: Any, session: Any, gate: Gate, cid: str) -> bool:
    """A rebuild that waits for nothing in flight: these tests send no issue request."""
    recovery = replace(resources.of(app).recovery, gate=gate, in_flight_ms=0)
    return gate_recovery.rebuild_gate(session, recovery, cid, utcnow()) is gate_recovery.Rebuilt.READY


def _events(engine: sa.Engine, coupon_id: str) -> int:
    return int(scalar(engine, "SELECT COUNT(*) FROM coupon_events WHERE coupon_id = :c", c=coupon_id))


def _in_thread(app: Any, target: Any) -> tuple[threading.Thread, list[Any]]:
    """Run target(session) in its own thread, app context and DB session; its result or exception lands in out."""
    out: list[Any] = []

    def run() -> None:
        with app.app_context():
            try:
                out.append(target(db.session))
            except Exception as exc:
                out.append(exc)
            finally:
                db.session.remove()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_rebuild_waits_for_a_change_holding_the_row_lock(app, gate, coupon, engine, rdb) -> None:
    """A change whose gate write found no meta commits only the DB; the rebuild must install those values."""
    cid = coupon.id
    rdb.delete(keys.meta(cid))
    with engine.connect() as conn:
        tx = conn.begin()
        conn.execute(sa.text("SELECT id FROM coupons WHERE id = :c FOR UPDATE"), {"c": cid})
        conn.execute(sa.text("UPDATE coupons SET total_quantity = 77, status = 'DISABLED' WHERE id = :c"), {"c": cid})
        thread, out = _in_thread(app, lambda session: _rebuild(app, session, gate, cid))
        time.sleep(0.5)
        assert thread.is_alive() and not rdb.exists(keys.meta(cid)), "the rebuild did not wait for the row lock"
        tx.commit()
    thread.join(10)
    assert out == [True]
    assert rdb.hget(keys.meta(cid), "total") == "77" and rdb.hget(keys.meta(cid), "status") == "DISABLED"
    assert_gate_matches_db(engine, rdb, cid)


def test_a_change_waits_for_a_rebuild_that_read_the_row_first(app, gate, coupon, engine, rdb) -> None:
    """A rebuild that read the old row installs it before the change may lock the row and write over it."""
    cid = coupon.id
    rdb.delete(keys.meta(cid))
    slow = Gate(gate.client)
    installing = threading.Event()

    def slow_install(coupon_id: str, snapshot: GateSnapshot) -> None:
        installing.set()
        time.sleep(0.5)  # the change arrives now, while the rebuild holds the row lock with the old values read
        Gate.install(slow, coupon_id, snapshot)

    slow.install = slow_install  # type: ignore[method-assign]
    thread, out = _in_thread(app, lambda session: _rebuild(app, session, slow, cid))
    assert installing.wait(10)
    update = lifecycle.update_coupon(db.session, gate, cid, CouponPatch(total_quantity=55), "test")
    thread.join(10)
    assert out == [True] and update.stock.total == 55
    assert rdb.hget(keys.meta(cid), "total") == "55", "the rebuild brought back the old total"
    assert_gate_matches_db(engine, rdb, cid)


def _failing_commit(monkeypatch: pytest.MonkeyPatch, *, after_commit: bool) -> list[int]:
    """The session's next commit raises (after really committing, with after_commit); later commits work."""
    session = db.session()
    real = session.commit
    calls: list[int] = []

    def commit() -> None:
        calls.append(1)
        if len(calls) > 1:
            real()
            return
        if after_commit:
            real()
        raise OperationalError("COMMIT", {}, Exception("Lost connection to server during query"))

    monkeypatch.setattr(session, "commit", commit)
    return calls


def test_a_failed_commit_puts_the_old_meta_back(app, gate, coupon, engine, rdb, monkeypatch) -> None:
    cid = coupon.id
    before = assert_gate_matches_db(engine, rdb, cid)
    _failing_commit(monkeypatch, after_commit=False)
    with pytest.raises(OperationalError):
        lifecycle.update_coupon(
            db.session, gate, cid, CouponPatch(total_quantity=50, status=CouponStatus.DISABLED), "test"
        )
    assert rdb.hgetall(keys.meta(cid)) == before
    assert_gate_matches_db(engine, rdb, cid)
    assert _events(engine, cid) == 1


def test_a_commit_whose_reply_was_lost_is_kept(app, gate, coupon, engine, rdb, monkeypatch) -> None:
    cid = coupon.id
    _failing_commit(monkeypatch, after_commit=True)
    update = lifecycle.update_coupon(db.session, gate, cid, CouponPatch(total_quantity=50), "test")
    assert update.stock.total == 50 and update.action is not None and update.action.value == "updated"
    assert rdb.hget(keys.meta(cid), "total") == "50"
    assert_gate_matches_db(engine, rdb, cid)
    assert _events(engine, cid) == 2


def test_a_redis_timeout_after_the_write_is_resynced(app, gate, coupon, engine, rdb, monkeypatch) -> None:
    """The script ran but its reply was lost: the change fails (503) and the gate holds the DB's values again."""
    cid = coupon.id
    before = rdb.hgetall(keys.meta(cid))
    real = gate.update_meta
    calls: list[int] = []

    def lost_reply(coupon_id: str, meta: Any, *, guard: bool = True) -> MetaUpdateResult:
        calls.append(1)
        result = real(coupon_id, meta, guard=guard)
        if len(calls) == 1:
            raise RedisUnavailable()
        return result

    monkeypatch.setattr(gate, "update_meta", lost_reply)
    with pytest.raises(RedisUnavailable):
        lifecycle.update_coupon(db.session, gate, cid, CouponPatch(status=CouponStatus.DISABLED), "test")
    assert len(calls) == 2 and rdb.hgetall(keys.meta(cid)) == before
    assert _events(engine, cid) == 1


def test_a_change_of_a_missing_gate_is_installed_by_the_next_rebuild(app, gate, coupon, engine, rdb) -> None:
    cid = coupon.id
    rdb.delete(keys.meta(cid))
    update = lifecycle.update_coupon(db.session, gate, cid, CouponPatch(total_quantity=30), "test")
    assert update.stock.total == 30 and not rdb.exists(keys.meta(cid))
    assert _rebuild(app, db.session, gate, cid)
    assert rdb.hget(keys.meta(cid), "total") == "30"
    assert_gate_matches_db(engine, rdb, cid)


def test_a_failed_gate_install_on_create_leaves_no_coupon(app, gate, engine, monkeypatch) -> None:
    def refused(coupon_id: str, snapshot: GateSnapshot) -> None:
        raise ConnectionError("Redis refused")

    monkeypatch.setattr(gate, "install", refused)
    with pytest.raises(RedisUnavailable):
        catalog.create_coupon(db.session, gate, parse_coupon_draft(coupon_body(10), utcnow()), "test")
    assert scalar(engine, "SELECT COUNT(*) FROM coupons") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM coupon_events") == 0
