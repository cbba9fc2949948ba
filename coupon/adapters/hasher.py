"""Password hashing (scrypt) off the gevent hub: a small native thread pool behind a bounded queue."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from werkzeug.security import check_password_hash, generate_password_hash

if TYPE_CHECKING:  # gevent is imported on first threaded use only (see _threadpool)
    from gevent.threadpool import ThreadPool

from coupon.adapters.hub import gevent_active
from coupon.domain.errors import HashingBusy
from coupon.observability.instruments import HASH_REFUSED

# scrypt: memory-hard and slow on purpose (tens of ms of CPU per hash, 32 MiB of memory).
HASH_METHOD = "scrypt"

T = TypeVar("T")


def hash_inline(password: str) -> str:
    """One hash on the calling thread: for the CLI and bulk minting, never for a request."""
    return generate_password_hash(password, method=HASH_METHOD)


def verify_inline(stored: str, password: str) -> bool:
    return check_password_hash(stored, password)


def _lower_priority(nice: int) -> None:
    """Make the calling native thread a background one: the hub thread of the same process (the issue path)
    then wins the CPU whenever both want it, and hashing gets what is left. Linux applies the nice value per
    thread; elsewhere this is a no-op."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, tid) < nice:
            os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError:
        pass  # not allowed or not supported: hashing still runs, only at the normal priority


class PasswordHasher:
    """`hash(password)` / `verify(stored, password)`, run in a pool of `threads` native threads when gevent is
    active (hashlib.scrypt releases the GIL, so the hub keeps serving requests while a hash runs), inline
    otherwise.

    At most `max_queue` hash jobs are admitted (running plus waiting) per process; one more is refused at
    once with HashingBusy (503 E5035 + Retry-After) instead of waiting behind all the others."""

    def __init__(self, threads: int = 1, max_queue: int = 32, nice: int = 10, threaded: bool | None = None) -> None:
        if threads < 1 or max_queue < 1:
            raise ValueError(f"threads and max_queue must be at least 1, got {threads}, {max_queue}")
        self.threads = threads
        self.max_queue = max_queue
        self.nice = nice
        self._threaded = threaded
        self._pool: ThreadPool | None = None
        self.admitted = 0
        # Running mean of one hash's wall time, for the Retry-After estimate (starts at a typical 80 ms).
        self._mean_s = 0.08

    @property
    def threaded(self) -> bool:
        if self._threaded is None:
            self._threaded = gevent_active()
        return self._threaded

    def hash(self, password: str) -> str:
        with self.slot() as slot:
            return slot.hash(password)

    def verify(self, stored: str, password: str) -> bool:
        with self.slot() as slot:
            return slot.verify(stored, password)

    @contextmanager
    def slot(self) -> Iterator[HashSlot]:
        """Admit one hash job, or raise HashingBusy at once. A caller may take the slot before other work (the
        login takes it before counting the attempt, so a refused login does not cost one of them)."""
        if self.admitted >= self.max_queue:
            HASH_REFUSED.inc()
            raise HashingBusy(retry_after=self.retry_after_s())
        self.admitted += 1
        try:
            yield HashSlot(self)
        finally:
            self.admitted -= 1

    def retry_after_s(self) -> float:
        """How long the admitted jobs take to clear, at the mean hash time seen so far."""
        return math.ceil(self.admitted * self._mean_s / self.threads)

    def _run(self, fn: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        if self.threaded:
            # The greenlet waits cooperatively on the pool's result; the hub runs other requests meanwhile.
            result: T = self._threadpool().apply(self._in_thread, (fn, *args))
        else:
            result = fn(*args)
        self._mean_s = 0.8 * self._mean_s + 0.2 * (time.perf_counter() - started)
        return result

    def _in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        _lower_priority(self.nice)
        return fn(*args)

    def _threadpool(self) -> ThreadPool:
        # Created on first use, in the worker process itself (after gunicorn's fork, after monkey-patching).
        if self._pool is None:
            from gevent.threadpool import ThreadPool

            self._pool = ThreadPool(self.threads)
        return self._pool


class HashSlot:
    """An admitted place in the queue: its hashes run without being counted again."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self._hasher = hasher

    def hash(self, password: str) -> str:
        return self._hasher._run(hash_inline, password)

    def verify(self, stored: str, password: str) -> bool:
        return self._hasher._run(verify_inline, stored, password)
