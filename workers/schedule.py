"""Registers the periodic republish job with rq-scheduler, idempotently: `python -m workers.schedule [--watch]`."""
from __future__ import annotations

import argparse
import logging
import signal
import threading
from datetime import datetime, timezone

from redis import Redis
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from coupon.config import load_config
from coupon.logging_setup import configure
from workers.backoff import Backoff
from workers.jobs import QUEUE, republish_failed

# Run it before (or beside) `rqscheduler`; running it again replaces nothing unless the interval changed.
JOB_ID = "coupon-republish-failed"
WATCH_SECONDS = 15.0
# The checks are quick commands: a reply later than this is a stalled Redis, not a slow one.
SOCKET_TIMEOUT = 5.0
log = logging.getLogger("workers.schedule")


def connect(redis_url: str) -> Redis:
    return Redis.from_url(redis_url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT)


def register(redis_url: str, interval: int, connection: Redis | None = None) -> str:
    """Returns 'created', 'unchanged' or 'replaced'."""
    scheduler = Scheduler(queue_name=QUEUE, connection=connection or connect(redis_url))
    existing = [job for job in scheduler.get_jobs() if job.id == JOB_ID]
    if existing and existing[0].meta.get("interval") == interval:
        return "unchanged"
    for job in existing:
        scheduler.cancel(job)
    scheduler.schedule(
        scheduled_time=datetime.now(timezone.utc),
        func=republish_failed,
        interval=interval,
        repeat=None,
        id=JOB_ID,
        meta={"interval": interval},
        result_ttl=interval * 10,
    )
    return "replaced" if existing else "created"


def watch(redis_url: str, interval: int, every: float, stop: threading.Event) -> None:
    """Check every `every` seconds; while Redis is unreachable, check sooner (backing off up to `every`)."""
    connection = connect(redis_url)
    # A Redis that restarts empty has lost the job; the quicker the check after an outage, the shorter
    # the time without retries.
    backoff = Backoff(first=0.5, cap=every)
    while not stop.is_set():
        try:
            outcome = register(redis_url, interval, connection)
        except RedisError as exc:
            delay = backoff.next_delay()
            log.warning("cannot reach Redis to check the schedule (%s: %s); watcher keeps running, next check in %.1fs",
                        type(exc).__name__, exc, delay)
            stop.wait(delay)
            continue
        if backoff.failures:
            log.info("Redis answers again after %d failed check(s)", backoff.failures)
            backoff.reset()
        if outcome != "unchanged":
            log.info("periodic job %s every %ss: %s", JOB_ID, interval, outcome)
        stop.wait(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--watch", action="store_true",
                        help="keep running and register the job again whenever Redis has lost it")
    parser.add_argument("--every", type=float, default=WATCH_SECONDS,
                        help=f"with --watch: seconds between checks (default {WATCH_SECONDS:g})")
    args = parser.parse_args()
    configure()
    cfg = load_config()
    if not args.watch:
        outcome = register(cfg["RQ_REDIS_URL"], cfg["REPUBLISH_INTERVAL_SECONDS"])
        log.info("periodic job %s every %ss: %s", JOB_ID, cfg["REPUBLISH_INTERVAL_SECONDS"], outcome)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    watch(cfg["RQ_REDIS_URL"], cfg["REPUBLISH_INTERVAL_SECONDS"], args.every, stop)


if __name__ == "__main__":
    main()
