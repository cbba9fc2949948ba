"""Group commit for concurrent greenlets: many callers submit one item each, a flusher runs them as one batch.

Under gevent, every item submitted while a batch is in flight joins the next one, so one Redis pipeline or one
Kafka record serves many requests, and each caller still gets its own result (or its own exception). Before
taking a batch, the flusher lets every other runnable greenlet go first, so requests already read off their
sockets join it too.
Without gevent (CLI, workers, unit tests) a submit simply runs a batch of one.

An item that waited in the queue longer than `queue_timeout` is failed without ever being sent, so a caller
that is told "failed" can trust that nothing was done on its behalf.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar, cast

from coupon.adapters.hub import gevent_active

if TYPE_CHECKING:  # gevent is imported only once it is active (see _bind_gevent)
    from gevent.event import AsyncResult

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Sequence["R | BaseException"]]


class QueueTimeout(TimeoutError):
    """The item was never sent: it waited too long behind earlier batches."""


class FlushTimeout(TimeoutError):
    """The batch holding the item did not finish in time; its outcome is unknown to the caller."""


class Coalescer(Generic[T, R]):
    def __init__(
        self,
        flush: Flush[T, R],
        max_batch: int = 1000,
        max_in_flight: int = 1,
        queue_timeout: float = 5.0,
        flush_timeout: float = 10.0,
    ) -> None:
        self._flush = flush
        self.max_batch = max_batch
        self.max_in_flight = max_in_flight
        self.queue_timeout = queue_timeout
        self.flush_timeout = flush_timeout
        self._pending: list[tuple[T, AsyncResult[R], float]] = []
        self._flushers = 0
        self._gevent = gevent_active()
        if self._gevent:
            self._bind_gevent()

    def _bind_gevent(self) -> None:
        # Bound once: imports inside submit() cost a lookup per request on the hot path.
        from gevent import Timeout, sleep, spawn
        from gevent.event import AsyncResult

        self._Timeout, self._spawn, self._AsyncResult, self._sleep = Timeout, spawn, AsyncResult, sleep

    def submit(self, item: T, queue_timeout: float | None = None, flush_timeout: float | None = None) -> R:
        """Run `item` in the next batch; `flush_timeout` must bound the flush function itself."""
        if not self._gevent:
            return self._unwrap(self._flush([item])[0])
        if not hasattr(self, "_AsyncResult"):  # switched to greenlet mode after construction (tests)
            self._bind_gevent()
        queue_timeout = self.queue_timeout if queue_timeout is None else queue_timeout
        flush_timeout = self.flush_timeout if flush_timeout is None else flush_timeout
        slot: AsyncResult[R] = self._AsyncResult()
        self._pending.append((item, slot, time.monotonic() + queue_timeout))
        if self._flushers < self.max_in_flight:
            self._flushers += 1
            self._spawn(self._run)
        try:
            # Every slot is set with its flush result (or an exception); gevent's stubs add None for a bare set().
            return cast(R, slot.get(timeout=queue_timeout + flush_timeout))
        except self._Timeout:
            raise FlushTimeout(f"no result within {queue_timeout + flush_timeout:.1f}s") from None

    @staticmethod
    def _unwrap(result: R | BaseException) -> R:
        if isinstance(result, BaseException):
            raise result
        return result

    def _run(self) -> None:
        try:
            while self._pending:
                # One turn of the run queue first: the greenlets that are ready (requests parsed, answers just
                # written) submit now and share this batch. Under load it grew batches from 24 to 36 requests
                # and cut the API's CPU per issue request by a tenth (bench/RESULTS.md).
                self._sleep(0)
                taken = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                now = time.monotonic()
                batch = []
                for item, slot, deadline in taken:
                    if deadline < now:
                        slot.set_exception(QueueTimeout("waited too long to be sent"))
                    else:
                        batch.append((item, slot))
                if not batch:
                    continue
                try:
                    results: Sequence[R | BaseException] = self._flush([item for item, _ in batch])
                except BaseException as exc:  # every caller of the batch gets the failure
                    results = [exc] * len(batch)
                for (_, slot), result in zip(batch, results):
                    if isinstance(result, BaseException):
                        slot.set_exception(result)
                    else:
                        slot.set(result)
        finally:
            self._flushers -= 1
