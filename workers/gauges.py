"""Gauges the consumer computes when it is scraped: failure records by status, stock of the live coupons."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text

from coupon.domain.vocabulary import utcnow
from coupon.extensions import db
from coupon.resources import of
from coupon.services import failure_records

if TYPE_CHECKING:
    from flask import Flask

log = logging.getLogger("workers.consumer")

# Bounded labels: only the most recent coupons whose issue window is open get a series.
STOCK_COUPONS = 20
_LIVE_COUPONS = text(
    "SELECT id, name, total_quantity, issued_count FROM coupons WHERE status = 'ACTIVE'"
    " AND (issue_starts_at IS NULL OR issue_starts_at <= :now) AND expires_at > :now"
    " ORDER BY created_at DESC LIMIT :limit"
)


class FailureCounts:
    """coupon_failures{status}: failure records by status, read from the DB when the consumer is scraped."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("coupon_failures", "failed_issued_coupons rows by status", labels=["status"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        try:
            with self.app.app_context():
                counts = failure_records.failure_counts(db.session)
                db.session.remove()
        except Exception as exc:  # a scrape must not fail because the DB is down; the gauge is left out
            log.warning("failure counts unavailable: %s", exc)
            return
        for status, count in counts.items():
            family.add_metric([status], count)
        yield family


class StockGauges:
    """coupon_stock_{total,reserved,remaining,issued}{coupon_id,name} of the live coupons (Redis + DB)."""

    NAMES = ("total", "reserved", "remaining", "issued")

    def __init__(self, app: Flask) -> None:
        self.app = app

    @classmethod
    def _families(cls) -> dict[str, GaugeMetricFamily]:
        helps = {
            "total": "Total quantity of a live coupon",
            "reserved": "Reservations in the Redis gate (accepted requests)",
            "remaining": "Stock the gate can still hand out (total - reserved)",
            "issued": "Issued rows in the DB (issued_count)",
        }
        return {n: GaugeMetricFamily(f"coupon_stock_{n}", helps[n], labels=["coupon_id", "name"]) for n in cls.NAMES}

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families().values()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = self._families()
        try:
            with self.app.app_context():
                rows = list(db.session.execute(_LIVE_COUPONS, {"now": utcnow(), "limit": STOCK_COUPONS}))
                db.session.remove()
            gate = of(self.app).gate
            for row in rows:
                reserved = gate.reserved(row.id)
                labels = [row.id, (row.name or "")[:40]]
                families["total"].add_metric(labels, row.total_quantity)
                families["reserved"].add_metric(labels, reserved)
                families["remaining"].add_metric(labels, max(row.total_quantity - reserved, 0))
                families["issued"].add_metric(labels, row.issued_count)
        except Exception as exc:  # DB or Redis down: the scrape still answers, without these gauges
            log.warning("stock gauges unavailable: %s", exc)
            return
        yield from families.values()
