"""Registers the periodic jobs with rq-scheduler, idempotently: `python -m workers.schedule [--watch]`.

The jobs: republish failure records (REPUBLISH_INTERVAL_SECONDS) and settle unconfirmed reservations
(SETTLE_INTERVAL_SECONDS). Run it before (or beside) `rqscheduler`; running it again replaces nothing unless an
interval changed.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from coupon.observability.log_setup import configure
from coupon.settings import Settings, exit_if_invalid, load_settings
from workers.backoff import Backoff
from workers.jobs import QUEUE, republish_failed, settle_reservations

JOB_ID = "coupon-republish-failed"
SETTLE_JOB_ID = "coupon-settle-reservations"
WATCH_SECONDS = 15.0
# The checks are quick commands: a reply later than this is a stalled Redis, not a slow one.
SOCKET_TIMEOUT = 5.0
log = logging.getLogger("workers.schedule")
# A periodic job: an rq job run with no arguments, returning its report.
PeriodicJob = Callable[[], dict[str, int]]


def connect(redis_url: str) -> Redis:
    return Redis.from_url(redis_url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT)


def jobs(cfg: Settings) -> list[tuple[str, PeriodicJob, int]]:
    """(job id, function, interval) of every periodic job."""
    return [
        (JOB_ID, republish_failed, cfg.republish_interval_seconds),
        (SETTLE_JOB_ID, settle_reservations, cfg.settle_interval_seconds),
    ]


def register(
    redis_url: str,
    interval: int,
    connection: Redis | None = None,
    job_id: str = JOB_ID,
    func: PeriodicJob = republish_failed,
) -> str:
    """Returns 'created', 'unchanged' or 'replaced'."""
    scheduler = Scheduler(queue_name=QUEUE, connection=connection or connect(redis_url))
    existing = [job for job in scheduler.get_jobs() if job.id == job_id]
    if existing and existing[0].meta.get("interval") == interval:
        return "unchanged"
    for job in existing:
        scheduler.cancel(job)
    scheduler.schedule(
        scheduled_time=datetime.now(UTC),
        func=func,
        interval=interval,
        repeat=None,
        id=job_id,
        meta={"interval": interval},
        result_ttl=interval * 10,
    )
    return "replaced" if existing else "created"


def register_all(cfg: Settings, connection: Redis | None = None, quiet: bool = False) -> None:
    for job_id, func, interval in jobs(cfg):
        outcome = register(cfg.rq_redis_url, interval, connection, job_id, func)
        if outcome != "unchanged" or not quiet:
            log.info("periodic job %s every %ss: %s", job_id, interval, outcome)


def watch(cfg: Settings, every: float, stop: threading.Event) -> None:
    """Check every `every` seconds; while Redis is unreachable, check sooner (backing off up to `every`)."""
    connection = connect(cfg.rq_redis_url)
    # A Redis that restarts empty has lost the job; the quicker the check after an outage, the shorter
    # the time without retries.
    backoff = Backoff(first=0.5, cap=every)
    while not stop.is_set():
        try:
            register_all(cfg, connection, quiet=True)
        except RedisError as exc:
            delay = backoff.next_delay()
            log.warning(
                "cannot reach Redis to check the schedule (%s: %s); watcher keeps running, next check in %.1fs",
                type(exc).__name__,
                exc,
                delay,
            )
            stop.wait(delay)
            continue
        if backoff.failures:
            log.info("Redis answers again after %d failed check(s)", backoff.failures)
            backoff.reset()
        stop.wait(every)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--watch", action="store_true", help="keep running and register the job again whenever Redis has lost it"
    )
    parser.add_argument(
        "--every",
        type=float,
        default=WATCH_SECONDS,
        help=f"with --watch: seconds between checks (default {WATCH_SECONDS:g})",
    )
    args = parser.parse_args()
    configure()
    with exit_if_invalid():
        cfg = load_settings()
    if not args.watch:
        register_all(cfg)
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    watch(cfg, args.every, stop)


if __name__ == "__main__":
    main()
