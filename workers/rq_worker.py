"""The rq worker class, riding out Redis outages and stalls: `rq worker --worker-class workers.rq_worker.Worker`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from redis import Redis
from rq.exceptions import StopRequested
from rq.job import Job
from rq.queue import Queue
from rq.worker import SimpleWorker, WorkerStatus

from coupon.adapters.redis_client import REDIS_ERRORS
from coupon.observability.log_setup import configure
from coupon.settings import exit_if_invalid, load_settings
from workers import rq_metrics
from workers.backoff import Backoff

# rq 2.12 blocks in BLMOVE for dequeue_timeout seconds (worker_ttl - 15 = 405 s by default) and raises the
# socket timeout to dequeue_timeout + 10, so a frozen Redis went unnoticed for ~7 minutes. A short blocking
# wait keeps the socket timeout short too: a reply later than STALL_SECONDS means Redis has stalled.
DEQUEUE_SECONDS = 10
STALL_SECONDS = DEQUEUE_SECONDS + 5
CONNECT_SECONDS = 5.0
log = logging.getLogger("workers.rq_worker")
T = TypeVar("T")


class Worker(SimpleWorker):
    """rq's SimpleWorker (jobs run in the worker process) with JSON logs, that keeps going without Redis.

    rq 2.12 retries a ConnectionError only inside its dequeue wait. A TimeoutError anywhere ("Redis
    connection timeout, quitting...") or a ConnectionError between jobs (state, heartbeat, maintenance)
    ends work() and the process. Here each of those steps waits Redis out with a growing delay instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Once the root logger has a handler, rq adds none of its own and its lines go through ours.
        configure()
        super().__init__(*args, **kwargs)
        self._waiting_for_job = False
        with exit_if_invalid():
            rq_metrics.start(load_settings())

    @property
    def dequeue_timeout(self) -> int:
        return DEQUEUE_SECONDS

    @property
    def connection_timeout(self) -> int:
        return STALL_SECONDS

    def _set_connection(self, connection: Redis) -> Redis:
        pool = connection.connection_pool
        # rq only ever raises the socket timeout; set it exactly, so a stall is noticed in STALL_SECONDS.
        pool.connection_kwargs.update(socket_timeout=self.connection_timeout, socket_connect_timeout=CONNECT_SECONDS)
        # `rq worker` has already used the pool (its suspension check); those connections keep old timeouts.
        pool.disconnect()
        pool.reset()
        return connection

    def _ride_out(self, what: str, step: Callable[[], T]) -> T:
        """Run one Redis step until it succeeds; a stop request (signal) still ends the wait."""
        backoff = Backoff()
        while True:
            try:
                result = step()
            except REDIS_ERRORS as exc:
                if self._stop_requested:
                    raise
                delay = backoff.next_delay()
                log.warning(
                    "Redis unavailable during %s (%s: %s); rq worker keeps running, next attempt in %.1fs",
                    what,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                time.sleep(delay)
                continue
            if backoff.failures:
                log.info("Redis answers again after %d failed attempt(s); %s resumed", backoff.failures, what)
            return result

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        self._waiting_for_job = True
        try:
            if self._stop_requested:  # a signal between the loop's own check and here
                raise StopRequested()
            return self._ride_out(
                "dequeue", lambda: super(Worker, self).dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            )
        finally:
            self._waiting_for_job = False

    def _shutdown(self) -> None:
        """A warm stop. rq raises StopRequested from the signal handler wherever the idle worker is; inside a
        logging call, logging swallowed it (a "--- Logging error ---" traceback in the JSON log, a CI run) and the
        stop was lost. It is raised only while the worker waits for a job; elsewhere the loop sees the flag."""
        if self._waiting_for_job or self.get_state() == WorkerStatus.BUSY:
            super()._shutdown()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
            return
        self._stop_requested = True
        if self.scheduler:
            self.stop_scheduler()  # type: ignore[no-untyped-call]

    def check_for_suspension(self, burst: bool) -> None:
        self._ride_out("the suspension check", lambda: super(Worker, self).check_for_suspension(burst))

    def run_maintenance_tasks(self) -> None:
        try:
            super().run_maintenance_tasks()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        except REDIS_ERRORS as exc:
            # Registry cleaning is housekeeping; it runs again at the next maintenance interval.
            log.warning("Redis unavailable during maintenance (%s); skipped this round", exc)

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)
            return
        self._ride_out("heartbeat", lambda: self._heartbeat_now(timeout))

    def _heartbeat_now(self, timeout: int | None) -> None:
        if not self.connection.exists(self.key):
            # Redis restarted empty: without registering again the worker would be invisible to `rq info`
            # and rq-dashboard (it keeps working either way).
            log.warning("worker %s is no longer registered in Redis (data lost?); registering again", self.name)
            self.register_birth()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        super().heartbeat(timeout)

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        except REDIS_ERRORS as exc:
            # The job's own errors never get here (rq marks the job failed); this is Redis failing while rq
            # records the outcome. Running the job again could do its work twice, so it is left to rq's
            # registry cleaning (abandoned → failed) and, for the periodic job, to its next run.
            log.warning(
                "Redis unavailable while recording job %s (%s: %s); carrying on with the next job",
                job.id,
                type(exc).__name__,
                exc,
            )

    def teardown(self) -> None:
        try:
            super().teardown()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        except REDIS_ERRORS as exc:
            log.warning("could not record the worker's exit in Redis (%s)", exc)

    def set_shutdown_requested_date(self) -> None:
        # Called from the SIGTERM handler; an outage there must not turn a warm shutdown into a traceback.
        try:
            super().set_shutdown_requested_date()  # type: ignore[no-untyped-call]  # rq leaves it unannotated
        except REDIS_ERRORS as exc:
            log.warning("could not record the shutdown request in Redis (%s)", exc)

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        # rq retries a ConnectionError on the command channel but lets a TimeoutError end the thread, after
        # which `rq` commands (shutdown, kill-horse) would silently stop reaching this worker.
        if isinstance(exc, REDIS_ERRORS):
            log.warning("Redis unavailable on the worker's command channel (%s); retrying in 2s", exc)
            time.sleep(2.0)
            return
        super()._pubsub_exception_handler(exc, pubsub, pubsub_thread)
