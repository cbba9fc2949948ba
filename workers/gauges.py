"""Gauges the consumer computes when it is scraped: failure records by status, stock of the live coupons."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

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
    "SELECT id, name, total_quantity, issued_count, issue_starts_at,"
    " (SELECT COUNT(*) FROM issue_rejections r WHERE r.coupon_id = coupons.id) AS rejected"
    " FROM coupons WHERE status = 'ACTIVE'"
    " AND (issue_starts_at IS NULL OR issue_starts_at <= :now) AND expires_at > :now"
    " ORDER BY created_at DESC LIMIT :limit"
)
_LAST_ROW = text("SELECT MAX(issued_at) FROM issued_coupons WHERE coupon_id = :c")


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
    """coupon_stock_*{coupon_id,name} of the live coupons (Redis + DB): total, reserved, remaining, issued, rejected,
    unconfirmed_age_seconds, sold_out_seconds."""

    NAMES = ("total", "reserved", "remaining", "issued", "rejected", "unconfirmed_age_seconds", "sold_out_seconds")

    def __init__(self, app: Flask) -> None:
        self.app = app
        # A sale's time to sell out does not change once the DB holds its whole stock: one query per coupon.
        self.sold_out_s: dict[str, float] = {}

    @classmethod
    def _families(cls) -> dict[str, GaugeMetricFamily]:
        helps = {
            "total": "Total quantity of a live coupon",
            "reserved": "Reservations in the Redis gate (accepted requests)",
            "remaining": "Stock the gate can still hand out (total - reserved)",
            "issued": "Issued rows in the DB (issued_count)",
            "rejected": "issue_rejections rows: accepted requests the DB stock guard refused (a bug signal)",
            "unconfirmed_age_seconds": "Age of the oldest unconfirmed hold in the gate (0: none); the sweeper"
            " settles one after SETTLE_AFTER_SECONDS",
            "sold_out_seconds": "Time to sell out: from the issue window's opening to the last issued row (only"
            " once the DB holds the whole stock)",
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
            now_ms = time.time() * 1000
            for row in rows:
                reserved = gate.reserved(row.id)
                labels = [row.id, (row.name or "")[:40]]
                families["total"].add_metric(labels, row.total_quantity)
                families["reserved"].add_metric(labels, reserved)
                families["remaining"].add_metric(labels, max(row.total_quantity - reserved, 0))
                families["issued"].add_metric(labels, row.issued_count)
                families["rejected"].add_metric(labels, row.rejected)
                # Scores are Redis' clock (reserve.lua's TIME): the same host's clock in every setup this runs in.
                oldest = gate.oldest_unconfirmed_ms(row.id)
                families["unconfirmed_age_seconds"].add_metric(
                    labels, 0.0 if oldest is None else max(now_ms - oldest, 0.0) / 1000
                )
                sold_out = self._sold_out_seconds(row)
                if sold_out is not None:
                    families["sold_out_seconds"].add_metric(labels, sold_out)
        except Exception as exc:  # DB or Redis down: the scrape still answers, without these gauges
            log.warning("stock gauges unavailable: %s", exc)
            return
        yield from families.values()

    def _sold_out_seconds(self, row: Any) -> float | None:
        if row.issued_count < row.total_quantity or row.total_quantity <= 0:
            return None
        if row.id not in self.sold_out_s:
            with self.app.app_context():
                last = db.session.execute(_LAST_ROW, {"c": row.id}).scalar()
                db.session.remove()
            if last is None:
                return None
            self.sold_out_s[row.id] = max((last - row.issue_starts_at).total_seconds(), 0.0)
        return self.sold_out_s[row.id]
