"""Unit tests of the pure parts of a gate rebuild: who was promised a unit, and how long the loss is waited out."""

from __future__ import annotations

from coupon.adapters.gate import LossMark
from coupon.domain.events import IssueEvent
from coupon.services.gate_recovery import promised

C = "11111111-2222-4333-8444-555555555555"


def event(user: str, rank: int, event_id: str | None = None) -> IssueEvent:
    return IssueEvent(event_id or f"e-{user}-{rank}", C, user, rank, "2026-12-07T00:00:00Z")


def test_the_promised_are_the_db_holders_and_the_users_of_every_record_in_flight_but_the_fenced() -> None:
    holders = {"a": 1, "b": 2}
    in_flight = [event("b", 9), event("c", 3), event("d", 4, "fenced"), event("e", 6), event("e", 5)]
    assert promised(holders, in_flight, {"fenced"}) == {"a": 1, "b": 2, "c": 3, "e": 5}
    assert holders == {"a": 1, "b": 2}, "the DB's holders are not changed in place"


def test_nothing_in_flight_is_the_db_alone() -> None:
    assert promised({"a": 1}, [], set()) == {"a": 1}


def test_a_loss_is_waited_out_from_its_first_sight_by_the_in_flight_bound() -> None:
    mark = LossMark(lost_at_ms=10_000, now_ms=13_000)
    assert mark.wait_ms(11_000) == 8_000
    assert mark.wait_ms(3_000) == 0
    assert LossMark(10_000, 30_000).wait_ms(11_000) == 0
