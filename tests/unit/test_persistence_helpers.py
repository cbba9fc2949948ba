"""Unit tests for the pure helpers of coupon.services.persistence: _dedupe and is_transient."""

from __future__ import annotations

import pymysql
import pytest
import sqlalchemy.exc as sa_exc

from coupon.adapters.mysql_errors import TRANSIENT
from coupon.domain.events import IssueEvent
from coupon.services.persistence import _dedupe, is_transient

COUPON_A = "11111111-1111-4111-8111-111111111111"
COUPON_B = "22222222-2222-4222-8222-222222222222"
USER_1 = "aaaaaaaa-0000-4000-8000-000000000001"
USER_2 = "aaaaaaaa-0000-4000-8000-000000000002"
USER_3 = "aaaaaaaa-0000-4000-8000-000000000003"


def ev(coupon_id: str, user_id: str, rank: int, event_id: str | None = None) -> IssueEvent:
    return IssueEvent(
        event_id=event_id or f"{coupon_id[:4]}-{user_id[-1]}-{rank}",
        coupon_id=coupon_id,
        user_id=user_id,
        rank=rank,
        requested_at="2026-11-27T09:00:00.000Z",
    )


# --- _dedupe -------------------------------------------------------------------------------------


def test_dedupe_of_nothing_is_empty() -> None:
    assert _dedupe([]) == {}


def test_dedupe_groups_events_by_coupon() -> None:
    events = [ev(COUPON_A, USER_1, 0), ev(COUPON_B, USER_1, 0), ev(COUPON_A, USER_2, 1)]
    grouped = _dedupe(events)
    assert set(grouped) == {COUPON_A, COUPON_B}
    assert [e.user_id for e in grouped[COUPON_A]] == [USER_1, USER_2]
    assert [e.user_id for e in grouped[COUPON_B]] == [USER_1]


def test_dedupe_sorts_each_group_by_rank() -> None:
    events = [ev(COUPON_A, USER_1, 5), ev(COUPON_A, USER_2, 1), ev(COUPON_A, USER_3, 3)]
    assert [e.rank for e in _dedupe(events)[COUPON_A]] == [1, 3, 5]


@pytest.mark.parametrize("ranks", [[7, 2, 9], [2, 7, 9], [9, 7, 2]])
def test_dedupe_keeps_one_event_per_user_with_the_lowest_rank(ranks: list[int]) -> None:
    events = [ev(COUPON_A, USER_1, r) for r in ranks]
    group = _dedupe(events)[COUPON_A]
    assert len(group) == 1
    assert group[0].rank == 2


def test_dedupe_keeps_the_first_of_identical_ranks() -> None:
    first, second = ev(COUPON_A, USER_1, 4, "first"), ev(COUPON_A, USER_1, 4, "second")
    assert _dedupe([first, second])[COUPON_A] == [first]


def test_dedupe_treats_the_same_user_on_different_coupons_separately() -> None:
    grouped = _dedupe([ev(COUPON_A, USER_1, 3), ev(COUPON_B, USER_1, 8)])
    assert [e.rank for e in grouped[COUPON_A]] == [3]
    assert [e.rank for e in grouped[COUPON_B]] == [8]


def test_dedupe_mixed_batch() -> None:
    events = [
        ev(COUPON_A, USER_2, 10),
        ev(COUPON_A, USER_1, 4),
        ev(COUPON_B, USER_3, 1),
        ev(COUPON_A, USER_2, 2),  # redelivery with a better rank
        ev(COUPON_A, USER_1, 4),  # exact redelivery
        ev(COUPON_B, USER_3, 6),
    ]
    grouped = _dedupe(events)
    assert [(e.user_id, e.rank) for e in grouped[COUPON_A]] == [(USER_2, 2), (USER_1, 4)]
    assert [(e.user_id, e.rank) for e in grouped[COUPON_B]] == [(USER_3, 1)]
    assert len(events) - sum(len(g) for g in grouped.values()) == 3


def test_dedupe_does_not_modify_its_input() -> None:
    events = [ev(COUPON_A, USER_2, 5), ev(COUPON_A, USER_1, 1)]
    before = list(events)
    _dedupe(events)
    assert events == before


# --- is_transient --------------------------------------------------------------------------------


def db_error(code: int, *, invalidated: bool = False, cls: type = sa_exc.OperationalError) -> sa_exc.DBAPIError:
    return cls("stmt", {}, pymysql.err.OperationalError(code, "x"), connection_invalidated=invalidated)


@pytest.mark.parametrize("code", sorted(TRANSIENT))
def test_connection_and_lock_errors_are_transient(code: int) -> None:
    assert is_transient(db_error(code)) is True


# The numbers as the MySQL/MariaDB manuals give them: a renamed or mistyped constant would drop one unseen.
@pytest.mark.parametrize("code", [1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013, 2055])
def test_the_documented_transient_codes_are_listed(code: int) -> None:
    assert code in TRANSIENT


@pytest.mark.parametrize("code", [1644, 1062, 1146, 1054, 1406, 1264])
def test_errors_about_the_message_are_not_transient(code: int) -> None:
    assert is_transient(db_error(code)) is False


def test_a_signal_from_a_trigger_is_not_transient() -> None:
    exc = sa_exc.OperationalError("stmt", {}, pymysql.err.OperationalError(1644, "stock guard"))
    assert is_transient(exc) is False


def test_an_integrity_error_is_not_transient() -> None:
    exc = sa_exc.IntegrityError("stmt", {}, pymysql.err.IntegrityError(1062, "Duplicate entry"))
    assert is_transient(exc) is False


def test_an_invalidated_connection_is_transient_whatever_the_code() -> None:
    assert is_transient(db_error(1644, invalidated=True)) is True


def test_a_dbapi_error_without_a_numeric_code_is_not_transient() -> None:
    exc = sa_exc.OperationalError("stmt", {}, pymysql.err.OperationalError("not a code"))
    assert is_transient(exc) is False


def test_a_pool_timeout_is_transient() -> None:
    assert is_transient(sa_exc.TimeoutError("QueuePool limit reached")) is True


@pytest.mark.parametrize("exc", [ValueError("x"), RuntimeError("x"), KeyError("x")])
def test_non_sqlalchemy_errors_are_not_transient(exc: BaseException) -> None:
    assert is_transient(exc) is False
