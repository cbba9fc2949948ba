"""Redis locks per (coupon, user): one consumer at a time persists a pair."""
from __future__ import annotations

import time
from typing import Iterable

import redis

from coupon.adapters import keys
from coupon.adapters.lua import source
from coupon.adapters.redis_client import RedisClient

Pair = tuple[str, str]


class LockBusy(Exception):
    """Some pairs stayed locked by another holder past the wait: the batch is retried later."""


class PairLocks:
    def __init__(self, client: RedisClient, ttl_ms: int = 30_000) -> None:
        self.client = client
        self.ttl_ms = ttl_ms
        self._unlock = client.register_script(source("unlock"))

    def _try(self, pairs: list[Pair], token: str) -> list[Pair]:
        pipe = self.client.pipeline(transaction=False)
        for coupon_id, user_id in pairs:
            pipe.set(keys.pair_lock(coupon_id, user_id), token, nx=True, px=self.ttl_ms)
        results = pipe.execute()
        return [pair for pair, ok in zip(pairs, results) if ok]

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
        lock_keys = [keys.pair_lock(coupon_id, user_id) for coupon_id, user_id in pairs]
        if not lock_keys:
            return
        for attempt in (1, 2):
            # EVALSHA through execute_command: redis-py's cluster pipeline refuses Script objects and evalsha().
            pipe = self.client.pipeline(transaction=False)
            for key in lock_keys:
                pipe.execute_command("EVALSHA", self._unlock.sha, 1, key, token)
            replies = pipe.execute(raise_on_error=False)
            if attempt == 1 and any(isinstance(r, redis.exceptions.NoScriptError) for r in replies):
                self.client.script_load(source("unlock"))  # Redis restarted and lost its script cache
                continue  # unlocking is compare-and-delete, so running it again is harmless
            break
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
