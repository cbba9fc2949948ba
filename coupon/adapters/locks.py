"""Redis locks per (coupon, user): one consumer at a time persists a pair."""

from __future__ import annotations

import time
from collections.abc import Iterable

from coupon.adapters import keys
from coupon.adapters.lua import source
from coupon.adapters.redis_client import RedisClient

Pair = tuple[str, str]


class LockBusy(Exception):
    """Some pairs stayed locked by another holder past the wait: the batch is retried later."""


class PairLocks:
    # Just past the consumer group's 10 s session timeout: a killed consumer's locks are gone about when its
    # partitions move, instead of holding the redelivered batch back for 30 s. A batch holds them for well under a
    # second; if one ever outlives its locks, INSERT IGNORE and the coupon row lock still keep the DB exact.
    def __init__(self, client: RedisClient, ttl_ms: int = 12_000) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self._lock = client.register_script(source("lock"))
        self._unlock = client.register_script(source("unlock"))

    def _try(self, pairs: list[Pair], token: str) -> list[Pair]:
        # One script call per coupon (its locks share a hash slot): a batch of 1,000 pairs is a handful of
        # commands, not 1,000.
        got: list[Pair] = []
        for coupon_id, users in _by_coupon(pairs).items():
            flags = self._lock(keys=[keys.pair_lock(coupon_id, u) for u in users], args=[token, self.ttl_ms])
            got.extend((coupon_id, u) for u, ok in zip(users, flags) if int(ok))
        return got

    def acquire(self, pairs: Iterable[Pair], token: str, wait_s: float = 10.0) -> None:
        """Take every lock or raise LockBusy (after releasing what was taken)."""
        wanted = list(dict.fromkeys(pairs))
        held: list[Pair] = []
        deadline = time.monotonic() + wait_s
        delay = 0.01
        while wanted:
            got = self._try(wanted, token)
            held.extend(got)
            taken = set(got)
            wanted = [p for p in wanted if p not in taken]
            if not wanted:
                return
            if time.monotonic() >= deadline:
                self.release(held, token)
                raise LockBusy(f"{len(wanted)} pairs locked by another consumer")
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    def release(self, pairs: Iterable[Pair], token: str) -> None:
        for coupon_id, users in _by_coupon(pairs).items():
            self._unlock(keys=[keys.pair_lock(coupon_id, u) for u in users], args=[token])


def _by_coupon(pairs: Iterable[Pair]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for coupon_id, user_id in pairs:
        grouped.setdefault(coupon_id, []).append(user_id)
    return grouped
