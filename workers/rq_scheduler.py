"""rqscheduler with JSON log lines that rides out Redis outages and stalls: `python -m workers.rq_scheduler`."""

from __future__ import annotations

import logging
import time
from typing import Any

from rq_scheduler import Scheduler as UpstreamScheduler
from rq_scheduler.scripts import rqscheduler as rqscheduler_script

from coupon.adapters.redis_client import REDIS_ERRORS
from coupon.observability.log_setup import configure
from workers.backoff import Backoff

# Every scheduler command is quick, so a reply later than this means Redis has stalled (SIGSTOP, swap, a
# long-running script); without a socket timeout the process would hang on it silently.
SOCKET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
log = logging.getLogger("workers.rq_scheduler")


class Scheduler(UpstreamScheduler):  # type: ignore[misc]  # rq-scheduler is untyped (Any)
    """rq-scheduler 0.14's Scheduler whose run loop survives Redis being down or frozen.

    Upstream's run() lets any redis error out of heartbeat()/enqueue_jobs() and the process exits. Here a
    ConnectionError or TimeoutError is logged, waited out with a growing delay, and the loop carries on.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool = self.connection.connection_pool
        pool.connection_kwargs.update(socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT)
        # Connections made before the update would keep the old timeouts.
        pool.disconnect()
        pool.reset()

    def heartbeat(self) -> None:
        # EXPIRE on a missing key answers 0: Redis restarted without our instance key (or we just started),
        # so register again and stay visible to `rqscheduler` tooling and rq-dashboard.
        if not self.connection.expire(self.key, int(self._interval) + 10):
            self.register_birth()

    def acquire_lock(self) -> bool:
        key = self.scheduler_lock_key
        got = self.connection.set(key, self.name, ex=int(self._interval) + 10, nx=True)
        # A run cut short by an outage leaves our own lock behind; waiting for it to expire would hold
        # scheduling back by up to interval + 10 s after Redis is back.
        if not got and self.connection.get(key) == self.name.encode():
            got = True
        self._lock_acquired = bool(got)
        return self._lock_acquired

    def remove_lock(self) -> None:
        try:
            super().remove_lock()
        except REDIS_ERRORS as exc:
            log.warning("could not release the scheduler lock (%s); it expires on its own", exc)

    def register_death(self) -> None:
        try:
            super().register_death()
        except REDIS_ERRORS as exc:
            log.warning("could not record the scheduler's exit in Redis (%s)", exc)

    def run(self, burst: bool = False) -> None:
        self._install_signal_handlers()
        backoff = Backoff()
        try:
            while True:
                started = time.time()
                try:
                    self.heartbeat()
                    if self.acquire_lock():
                        self.enqueue_jobs()
                        self.heartbeat()
                        self.remove_lock()
                        if burst:
                            log.info("RQ scheduler done, quitting")
                            return
                    else:
                        log.warning("Lock already taken - skipping run")
                except REDIS_ERRORS as exc:
                    delay = backoff.next_delay()
                    log.warning(
                        "Redis unavailable (%s: %s); rqscheduler keeps running, next attempt in %.1fs",
                        type(exc).__name__,
                        exc,
                        delay,
                    )
                    time.sleep(delay)
                    continue
                if backoff.failures:
                    log.info("Redis answers again after %d failed attempt(s); scheduling resumed", backoff.failures)
                    backoff.reset()
                left = self._interval - (time.time() - started)
                if left > 0:
                    time.sleep(left)
        finally:
            self.remove_lock()
            self.register_death()


def main() -> None:
    configure()
    # The script installs a coloured text handler unless its logger already has one; with a NullHandler its
    # lines go to the root logger, which writes JSON.
    logging.getLogger("rq_scheduler.scheduler").addHandler(logging.NullHandler())
    # The script builds the Scheduler by the name it imported; pointing that name at ours keeps every one of
    # its arguments (--url, --interval, --burst, ...) without copying its parser.
    rqscheduler_script.Scheduler = Scheduler
    rqscheduler_script.main()


if __name__ == "__main__":
    main()
