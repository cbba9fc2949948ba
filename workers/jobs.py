"""RQ jobs: small top-level functions an `rq worker` imports and runs. Each builds the app once per process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from coupon import create_app, settings
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.domain.vocabulary import utcnow
from coupon.extensions import db
from coupon.observability.instruments import JOB_LAST_SUCCESS, JOB_RUNS, SWEEPER_SETTLED
from coupon.resources import of
from coupon.services import failure_records
from coupon.sweeper import sweep

if TYPE_CHECKING:
    from flask import Flask

QUEUE = "coupon-retry"
# The task label of each periodic job's metrics (coupon_periodic_job_*): the alert on a job that stopped running.
REPUBLISH = "republish"
SETTLE = "settle"
SETTLED_OUTCOMES = ("issued", "failure-record", "rejected", "fenced")


def start_job_metrics(now: Callable[[], float] = time.time) -> None:
    """Every series exists from the worker's start: a job that never runs still shows, as 'not since the start'."""
    for job in (REPUBLISH, SETTLE):
        JOB_LAST_SUCCESS.labels(job).set(now())
        for result in ("ok", "error"):
            JOB_RUNS.labels(job, result)
    for outcome in SETTLED_OUTCOMES:
        SWEEPER_SETTLED.labels(outcome)


@contextmanager
def _counted(job: str) -> Iterator[None]:
    try:
        yield
    except BaseException:
        JOB_RUNS.labels(job, "error").inc()
        raise
    JOB_RUNS.labels(job, "ok").inc()
    JOB_LAST_SUCCESS.labels(job).set(time.time())


@cache
def _app() -> Flask:
    return create_app()


def _publisher(app: Flask) -> IssuePublisher:
    return of(app).publisher


def republish_failed() -> dict[str, int]:
    """The periodic pass over failed_issued_coupons (scheduled by workers.schedule)."""
    app = _app()
    with _counted(REPUBLISH), app.app_context():
        try:
            report = failure_records.republish_failed(
                db.session,
                _publisher(app),
                settings.of(app).failure_max_retries,
                utcnow(),
                settle_seconds=settings.of(app).republish_interval_seconds,
            )
        finally:
            db.session.remove()
    return {"republished": report.republished, "dead": report.dead}


def settle_reservations(older_than_s: float | None = None) -> dict[str, int]:
    """The periodic sweep over unconfirmed reservations (scheduled by workers.schedule)."""
    app = _app()
    with _counted(SETTLE), app.app_context():
        try:
            report = sweep(app, older_than_s)
        finally:
            db.session.remove()
    for item in report.settled:
        SWEEPER_SETTLED.labels(item.outcome).inc()
    return {
        "candidates": report.candidates,
        "lagging": report.lagging,
        "settled": len(report.settled),
        "fenced": report.count("fenced"),
        "retired": len(report.retired),
    }
