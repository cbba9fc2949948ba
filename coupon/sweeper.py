"""The sweep over unconfirmed reservations, wired to the app's collaborators: run by the periodic rq job and by
`flask reconcile --repair` (one place, so the CLI needs nothing from workers/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coupon import settings
from coupon.adapters.kafka_progress import ConsumerProgress
from coupon.domain.vocabulary import utcnow
from coupon.extensions import db
from coupon.resources import of
from coupon.services import settlement

if TYPE_CHECKING:
    from flask import Flask


def sweep(app: Flask, older_than_s: float | None = None) -> settlement.SettlementReport:
    """One sweep with the app's collaborators, inside the caller's app context."""
    cfg = settings.of(app)
    progress = ConsumerProgress(cfg.kafka_bootstrap_servers, cfg.kafka_issue_topic, cfg.kafka_consumer_group)
    now = utcnow()
    return settlement.settle_reservations(
        db.session,
        of(app).gate,
        progress,
        now,
        int(now.timestamp() * 1000),
        cfg.settle_after_seconds if older_than_s is None else older_than_s,
        lag_wait_s=cfg.settle_lag_wait_seconds,
    )
