"""coupon_dependency_up{dependency}: /health/ready's checks, run by whichever API worker answers a /metrics scrape."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from coupon.http.views.health import dependency_checks
from coupon.services.readiness import readiness


class DependencyGauge:
    """1 while a dependency answers /health/ready's check, 0 while it is DOWN (inside the scrape's request)."""

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "coupon_dependency_up",
            "1 when /health/ready's check of a dependency passes, 0 when DOWN",
            labels=["dependency"],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        _, report = readiness(dependency_checks())
        for name, result in report.items():
            family.add_metric([name], 1.0 if result["status"] == "UP" else 0.0)
        yield family
