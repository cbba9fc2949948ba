"""The rq worker's warm stop (SIGTERM): raised only where it interrupts the wait for a job, a flag everywhere else,
so a signal that lands inside a log call is neither swallowed by logging nor printed as a traceback."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest
from redis import Redis
from rq.exceptions import StopRequested
from rq.worker import WorkerStatus

from workers.rq_worker import Worker


@pytest.fixture
def worker(base_env: dict[str, str]) -> Iterator[Worker]:
    # request_stop installs rq's cold-stop handlers: the test process gets its own back afterwards.
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    w = Worker(["coupon-retry"], connection=Redis.from_url(base_env["RQ_REDIS_URL"]))
    w._state = WorkerStatus.IDLE
    try:
        yield w
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def test_a_stop_while_idle_outside_the_wait_sets_the_flag_and_raises_nothing(worker: Worker) -> None:
    # E.g. in the middle of a log call: an exception raised there was swallowed by logging, and the stop lost.
    worker.request_stop(signal.SIGTERM, None)
    assert worker._stop_requested


def test_a_stop_while_waiting_for_a_job_interrupts_the_wait(worker: Worker) -> None:
    worker._waiting_for_job = True
    with pytest.raises(StopRequested):
        worker.request_stop(signal.SIGTERM, None)


def test_a_stop_already_requested_never_starts_a_wait(worker: Worker) -> None:
    worker.request_stop(signal.SIGTERM, None)
    with pytest.raises(StopRequested):
        worker.dequeue_job_and_maintain_ttl(10)
    assert not worker._waiting_for_job


def test_a_stop_while_busy_lets_the_job_finish(worker: Worker) -> None:
    worker._state = WorkerStatus.BUSY
    worker.request_stop(signal.SIGTERM, None)
    assert worker._stop_requested
