"""Identifiers: every id the service mints or accepts is a UUID in its canonical lower-case text form."""

from __future__ import annotations

import itertools
import os
import re

# A client's Idempotency-Key: 1 to this many characters (the pattern: coupon/http/schemas/headers.py).
IDEMPOTENCY_KEY_MAX_LENGTH = 100

CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class _EventIds:
    """Event ids, 32 hex digits as uuid4().hex gives: a random 64-bit prefix per process, then a counter. One
    os.urandom per process instead of one per issue request; a forked child draws a prefix of its own."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count(int.from_bytes(os.urandom(4), "big"))

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFFFFFF:016x}"


new_event_id = _EventIds().next
