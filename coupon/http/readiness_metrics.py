"""coupon_dependency_up{dependency}: /health/ready's checks, run by whichever API worker answers a /metrics scrape."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from flask import current_app
from prometheus_client.core import GaugeMetricFamily

from coupon.extensions import db
from coupon.http.views.health import dependency_checks

if TYPE_CHECKING:
    from flask import Flask

# A frozen MariaDB held a scrape 10-20 s (its read timeout), longer than the 5 s scrape interval: the API's target
# then went down and every one of its metrics with it. A check still running after this long reads DOWN.
BUDGET_S = 2.5


@dataclass
class _Run:
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


def _run_check(app: Flask, name: str, run: _Run) -> None:
    try:
        with app.app_context():
            try:
                dependency_checks()[name]()
                run.ok = True
            finally:
                db.session.remove()
    except Exception:  # DOWN is the answer; /health/ready reports the error itself
        run.ok = False
    finally:
        run.done.set()


class DependencyGauge:
    """1 while a dependency answers /health/ready's check within BUDGET_S, 0 while it is DOWN or slower.

    Each check runs in a thread (a greenlet under gevent) of its own, in an app context of its own, so a stuck one
    neither holds the scrape nor hides the others; while it is still stuck, the next scrape starts no other."""

    def __init__(self, budget_s: float = BUDGET_S) -> None:
        self.budget_s = budget_s
        self._inflight: dict[str, _Run] = {}
        self._lock = threading.Lock()

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
        app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]  # werkzeug's proxy
        runs: dict[str, _Run] = {}
        for name in dependency_checks():
            with self._lock:
                run = self._inflight.get(name)
                if run is None or run.done.is_set():
                    run = self._inflight[name] = _Run()
                    threading.Thread(
                        target=_run_check, args=(app, name, run), name=f"ready-{name}", daemon=True
                    ).start()
            runs[name] = run
        deadline = time.monotonic() + self.budget_s
        family = self._family()
        for name, run in runs.items():
            finished = run.done.wait(max(deadline - time.monotonic(), 0.0))
            family.add_metric([name], 1.0 if finished and run.ok else 0.0)
        yield family
