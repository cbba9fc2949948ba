"""Registers the periodic jobs with rq-scheduler, idempotently: `python -m workers.schedule`.

The jobs: republish failure records (REPUBLISH_INTERVAL_SECONDS), settle unconfirmed reservations
(SETTLE_INTERVAL_SECONDS).
Run it before (or beside) `rqscheduler`; running it again replaces nothing unless the interval changed.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from datetime import datetime, timezone
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from coupon.config import load_config
from coupon.logging_setup import configure
from workers.jobs import QUEUE, republish_failed, settle_reservations

JOB_ID = "coupon-republish-failed"
SETTLE_JOB_ID = "coupon-settle-reservations"
WATCH_SECONDS = 15
log = logging.getLogger("workers.schedule")


def register(redis_url: str, interval: int, job_id: str = JOB_ID, func: Any = republish_failed) -> str:
    """Returns 'created', 'unchanged' or 'replaced'."""
    scheduler = Scheduler(queue_name=QUEUE, connection=Redis.from_url(redis_url))
    existing = [job for job in scheduler.get_jobs() if job.id == job_id]
    if existing and existing[0].meta.get("interval") == interval:
        return "unchanged"
    for job in existing:
        scheduler.cancel(job)
    scheduler.schedule(
        scheduled_time=datetime.now(timezone.utc),
        func=func,
        interval=interval,
        repeat=None,
        id=job_id,
        meta={"interval": interval},
        result_ttl=interval * 10,
    )
    return "replaced" if existing else "created"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--watch", action="store_true",
                        help="keep running and register the job again whenever Redis has lost it")
    args = parser.parse_args()
    configure()
    cfg = load_config()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while True:
        try:
            for job_id, func, interval in ((JOB_ID, republish_failed, cfg["REPUBLISH_INTERVAL_SECONDS"]),
                                           (SETTLE_JOB_ID, settle_reservations, cfg["SETTLE_INTERVAL_SECONDS"])):
                outcome = register(cfg["RQ_REDIS_URL"], interval, job_id, func)
                if outcome != "unchanged" or not args.watch:
                    log.info("periodic job %s every %ss: %s", job_id, interval, outcome)
        except RedisError as exc:
            if not args.watch:
                raise
            log.warning("cannot reach Redis to check the schedule: %s", exc)
        if not args.watch or stop.wait(WATCH_SECONDS):
            return


if __name__ == "__main__":
    main()
