"""Coalescer: concurrent greenlets share batches, each gets its own result or its own exception."""

from __future__ import annotations

import gevent
import pytest

from coupon.adapters.coalescer import Coalescer, FlushTimeout, QueueTimeout


class Recorder:
    def __init__(self, fail_on: set[int] | None = None, crash: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail_on = fail_on or set()
        self.crash = crash

    def __call__(self, items: list[int]) -> list[object]:
        self.batches.append(list(items))
        gevent.sleep(0.001)  # a round trip: later submitters queue up meanwhile
        if self.crash:
            raise ConnectionError("down")
        return [ValueError(i) if i in self.fail_on else i * 10 for i in items]


def _greenlet_mode(coalescer: Coalescer) -> Coalescer:
    coalescer._gevent = True  # the tests drive greenlets directly, without monkey-patching the process
    return coalescer


def test_without_gevent_each_submit_is_a_batch_of_one() -> None:
    rec = Recorder()
    c = Coalescer(rec)
    c._gevent = False
    assert [c.submit(i) for i in range(3)] == [0, 10, 20]
    assert rec.batches == [[0], [1], [2]]


def test_concurrent_submits_share_batches_and_keep_their_own_results() -> None:
    rec = Recorder()
    c = _greenlet_mode(Coalescer(rec, max_batch=1000))
    jobs = [gevent.spawn(c.submit, i, 5, 5) for i in range(200)]
    gevent.joinall(jobs, raise_error=True)
    assert [j.value for j in jobs] == [i * 10 for i in range(200)]
    assert sorted(i for b in rec.batches for i in b) == list(range(200))
    assert len(rec.batches) < 20  # far fewer round trips than requests


def test_greenlets_that_become_ready_in_the_same_turn_join_the_first_batch() -> None:
    rec = Recorder()
    c = _greenlet_mode(Coalescer(rec))

    def late(item: int) -> int:
        # Ready again only in the turn after the flusher was scheduled (a request still being parsed).
        gevent.sleep(0)
        gevent.sleep(0)
        return c.submit(item, 5, 5)

    jobs = [gevent.spawn(late, 1), gevent.spawn(c.submit, 0, 5, 5)]
    gevent.joinall(jobs, raise_error=True)
    assert rec.batches == [[0, 1]]


def test_max_batch_is_respected() -> None:
    rec = Recorder()
    c = _greenlet_mode(Coalescer(rec, max_batch=7))
    gevent.joinall([gevent.spawn(c.submit, i, 5, 5) for i in range(50)], raise_error=True)
    assert max(len(b) for b in rec.batches) <= 7


def test_a_per_item_failure_reaches_only_its_caller() -> None:
    c = _greenlet_mode(Coalescer(Recorder(fail_on={3})))
    jobs = [gevent.spawn(c.submit, i, 5, 5) for i in range(6)]
    gevent.joinall(jobs)
    assert isinstance(jobs[3].exception, ValueError)
    assert [j.value for i, j in enumerate(jobs) if i != 3] == [0, 10, 20, 40, 50]


def test_a_failed_flush_fails_every_caller_of_that_batch() -> None:
    c = _greenlet_mode(Coalescer(Recorder(crash=True)))
    jobs = [gevent.spawn(c.submit, i, 5, 5) for i in range(5)]
    gevent.joinall(jobs)
    assert all(isinstance(j.exception, ConnectionError) for j in jobs)
    # and the coalescer still works afterwards
    c._flush = Recorder()
    assert gevent.spawn(c.submit, 1, 5).get() == 10


def test_submit_times_out_when_the_flush_hangs() -> None:
    def hang(items: list[int]) -> list[int]:
        gevent.sleep(1)
        return items

    c = _greenlet_mode(Coalescer(hang))
    with pytest.raises(FlushTimeout):
        gevent.spawn(c.submit, 1, 0.05, 0.05).get()


def test_items_that_waited_too_long_are_failed_unsent() -> None:
    sent: list[list[int]] = []

    def slow(items: list[int]) -> list[int]:
        sent.append(list(items))
        gevent.sleep(0.2)
        return items

    c = _greenlet_mode(Coalescer(slow))
    first = gevent.spawn(c.submit, 1, 1.0, 1.0)
    gevent.sleep(0.01)
    late = [gevent.spawn(c.submit, i, 0.05, 1.0) for i in (2, 3)]  # queued behind a 0.2 s flush
    gevent.joinall([first, *late])
    assert first.value == 1
    assert all(isinstance(j.exception, QueueTimeout) for j in late)
    assert sent == [[1]]
