"""Unit tests for the password hasher: bounded admission, Retry-After, and hashing off the gevent hub."""

from __future__ import annotations

import threading

import gevent
import pytest

from coupon.adapters.hasher import PasswordHasher, verify_inline
from coupon.domain.errors import HashingBusy


def test_hash_and_verify_round_trip_inline() -> None:
    hasher = PasswordHasher(threads=1, max_queue=2, threaded=False)
    stored = hasher.hash("secret-123")
    assert stored.startswith("scrypt:32768:8:1$")
    assert hasher.verify(stored, "secret-123") and not hasher.verify(stored, "secret-124")
    assert verify_inline(stored, "secret-123")  # the CLI's inline check reads the same format
    assert hasher.admitted == 0


def test_beyond_max_queue_a_job_is_refused_at_once_with_retry_after() -> None:
    hasher = PasswordHasher(threads=2, max_queue=3, threaded=False)
    hasher._mean_s = 0.9  # as if each hash took 0.9 s: three admitted jobs on two threads clear in 1.35 s
    with hasher.slot(), hasher.slot(), hasher.slot():
        with pytest.raises(HashingBusy) as err:
            hasher.hash("one-too-many")
        assert err.value.retry_after == 2 and err.value.code == "E5035" and err.value.status == 503
    assert hasher.admitted == 0
    hasher.hash("room-again")  # the slots were given back


def test_a_failing_job_gives_its_slot_back() -> None:
    hasher = PasswordHasher(threads=1, max_queue=1, threaded=False)
    with pytest.raises(AttributeError):
        hasher.hash(None)  # type: ignore[arg-type]
    assert hasher.admitted == 0


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        PasswordHasher(threads=0)
    with pytest.raises(ValueError):
        PasswordHasher(max_queue=0)


def test_threaded_hashes_run_in_native_threads_while_the_hub_keeps_running() -> None:
    hasher = PasswordHasher(threads=2, max_queue=8, nice=0, threaded=True)
    hub_thread = threading.get_ident()
    seen_threads: list[int] = []
    real = hasher._in_thread

    def recording(fn, *args):  # type: ignore[no-untyped-def]
        seen_threads.append(threading.get_ident())
        return real(fn, *args)

    hasher._in_thread = recording  # type: ignore[method-assign]
    ticks = [0]
    done = [False]

    def ticker() -> None:
        while not done[0]:
            ticks[0] += 1
            gevent.sleep(0.002)

    tick = gevent.spawn(ticker)
    jobs = [gevent.spawn(hasher.hash, f"password-{i}") for i in range(4)]
    gevent.joinall(jobs, raise_error=True)
    done[0] = True
    tick.join()
    assert all(j.value.startswith("scrypt:") for j in jobs)
    assert seen_threads and hub_thread not in seen_threads
    # Four hashes take well over 100 ms; had they run on the hub, the ticker would not have run in between.
    assert ticks[0] >= 10, ticks[0]
    assert hasher.admitted == 0
