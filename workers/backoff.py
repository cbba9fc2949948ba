"""The growing wait between attempts while a dependency is out (Redis: coupon.adapters.redis_client.REDIS_ERRORS)."""

from __future__ import annotations

import random


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
