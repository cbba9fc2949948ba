"""The rq worker class: `rq worker --worker-class workers.rq_worker.Worker coupon-retry`.

rq's SimpleWorker (jobs run in the worker process), with the project's JSON log lines: once the root
logger has a handler, rq adds none of its own and its lines (job started, finished) go through ours.
"""
from __future__ import annotations

from typing import Any

from rq.worker import SimpleWorker

from coupon.logging_setup import configure


class Worker(SimpleWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        configure()
        super().__init__(*args, **kwargs)
