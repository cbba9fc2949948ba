"""Unit tests for chunked persistence: plan_chunks, BatchReport.add and persist_in_chunks (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from coupon.domain.events import IssueEvent
from coupon.services.persistence import BatchReport, TransientFailure, persist_in_chunks, plan_chunks

COUPON_A = "11111111-1111-4111-8111-111111111111"
COUPON_B = "22222222-2222-4222-8222-222222222222"
NOW = datetime(2026, 11, 27, 9, 0, 0)


def ev(coupon_id: str, n: int, rank: int | None = None) -> IssueEvent:
    return IssueEvent(
        f"e-{coupon_id[:4]}-{n}", coupon_id, f"aaaaaaaa-0000-4000-8000-{n:012d}", n if rank is None else rank, "t"
    )


def test_nothing_is_no_chunk() -> None:
    assert plan_chunks([], 10) == []


@pytest.mark.parametrize("count", [1, 9, 10])
def test_a_poll_that_fits_is_one_chunk_in_its_own_order(count: int) -> None:
    events = [ev(COUPON_B if i % 2 else COUPON_A, i, rank=100 - i) for i in range(count)]
    [chunk] = plan_chunks(events, 10)
    assert chunk == events


@pytest.mark.parametrize(
    ("count", "size", "sizes"), [(11, 10, [10, 1]), (600, 50, [50] * 12), (7, 1, [1] * 7), (2001, 2000, [2000, 1])]
)
def test_a_bigger_poll_splits_into_chunks_of_at_most_size_and_keeps_every_event(
    count: int, size: int, sizes: list[int]
) -> None:
    events = [ev(COUPON_A, i) for i in range(count)]
    chunks = plan_chunks(events, size)
    assert [len(c) for c in chunks] == sizes
    assert sorted(e.event_id for c in chunks for e in c) == sorted(e.event_id for e in events)


def test_a_bigger_poll_is_ordered_by_coupon_then_rank() -> None:
    # Two partitions' worth, interleaved: later ranks of one coupon arrive before earlier ones.
    events = [
        ev(COUPON_B, 1, rank=5),
        ev(COUPON_A, 2, rank=9),
        ev(COUPON_A, 3, rank=1),
        ev(COUPON_B, 4, rank=0),
        ev(COUPON_A, 5, rank=4),
    ]
    chunks = plan_chunks(events, 2)
    flat = [(e.coupon_id, e.rank) for c in chunks for e in c]
    assert flat == [(COUPON_A, 1), (COUPON_A, 4), (COUPON_A, 9), (COUPON_B, 0), (COUPON_B, 5)]
    assert [len(c) for c in chunks] == [2, 2, 1]


@pytest.mark.parametrize("size", [0, -1])
def test_a_chunk_size_below_one_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan_chunks([ev(COUPON_A, 1)], size)


def test_reports_add_up() -> None:
    a, b = ev(COUPON_A, 1), ev(COUPON_A, 2)
    total = BatchReport(inserted=1, duplicates=2, outcomes=[(a, "inserted", None)])
    total.add(
        BatchReport(inserted=3, rejected=1, failed=1, resolved=2, failures=[(b, "boom")], outcomes=[(b, "failed", 7)])
    )
    assert (total.inserted, total.duplicates, total.rejected, total.failed, total.resolved) == (4, 2, 1, 1, 2)
    assert total.failures == [(b, "boom")]
    assert total.outcomes == [(a, "inserted", None), (b, "failed", 7)]


class FakePersist:
    """Stands in for persist_batch: one call per chunk, optionally failing transiently at one of them."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.chunks: list[list[IssueEvent]] = []
        self.fail_at = fail_at

    def __call__(
        self, session: Any, locks: Any, events: list[IssueEvent], now: datetime, lock_wait_s: float = 10.0
    ) -> BatchReport:
        self.chunks.append(events)
        if self.fail_at == len(self.chunks) - 1:
            raise TransientFailure("database unavailable")
        return BatchReport(inserted=len(events), outcomes=[(e, "inserted", None) for e in events])


def test_every_chunk_is_persisted_on_its_own_and_the_reports_are_summed() -> None:
    events = [ev(COUPON_A, i) for i in range(125)]
    persist = FakePersist()
    report = persist_in_chunks(None, None, events, NOW, chunk_events=50, persist=persist)  # type: ignore[arg-type]
    assert [len(c) for c in persist.chunks] == [50, 50, 25]
    assert report.inserted == 125 and len(report.outcomes) == 125 and report.chunks == 3


@pytest.mark.parametrize("fail_at", [0, 1, 2])
def test_a_chunk_failing_transiently_fails_the_whole_poll_and_stops_there(fail_at: int) -> None:
    persist = FakePersist(fail_at=fail_at)
    with pytest.raises(TransientFailure):
        persist_in_chunks(
            None,
            None,
            [ev(COUPON_A, i) for i in range(125)],
            NOW,
            chunk_events=50,  # type: ignore[arg-type]
            persist=persist,
        )
    assert len(persist.chunks) == fail_at + 1


def test_no_events_persist_nothing() -> None:
    persist = FakePersist()
    report = persist_in_chunks(None, None, [], NOW, chunk_events=50, persist=persist)  # type: ignore[arg-type]
    assert persist.chunks == [] and report == BatchReport()
