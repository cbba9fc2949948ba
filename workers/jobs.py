"""RQ jobs: small top-level functions an `rq worker` imports and runs. Each builds the app once per process."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from coupon import create_app, settings
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.domain.vocabulary import utcnow
from coupon.extensions import db
from coupon.resources import of
from coupon.services import failure_records
from coupon.sweeper import sweep

if TYPE_CHECKING:
    from flask import Flask

QUEUE = "coupon-retry"


@cache
def _app() -> Flask:
    return create_app()


def _publisher(app: Flask) -> IssuePublisher:
    return of(app).publisher


def republish_failed() -> dict[str, int]:
    """The periodic pass over failed_issued_coupons (scheduled by workers.schedule)."""
    app = _app()
    with app.app_context():
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
    with app.app_context():
        try:
            report = sweep(app, older_than_s)
        finally:
            db.session.remove()
    return {
        "candidates": report.candidates,
        "lagging": report.lagging,
        "settled": len(report.settled),
        "fenced": report.count("fenced"),
        "retired": len(report.retired),
    }
