"""Riding out a Redis outage or stall: which errors count as one, and the growing wait between attempts."""

from __future__ import annotations

import random

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Refused, reset and "still loading" (BusyLoadingError is a ConnectionError) are outages; a read past the
# socket timeout is a stall. Anything else from Redis is a bug, and stays fatal.
REDIS_DOWN = (RedisConnectionError, RedisTimeoutError)


class Backoff:
    """Delays first, first*2, ... up to cap (with ±10% jitter so restarted processes do not retry in step)."""

    def __init__(self, first: float = 0.5, cap: float = 10.0) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        delay: float = min(self.cap, self.first * 2**self.failures)
        self.failures += 1
        return delay * random.uniform(0.9, 1.1)

    def reset(self) -> None:
        self.failures = 0
