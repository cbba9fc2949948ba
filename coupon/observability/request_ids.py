"""Request ids: taken from X-Request-Id when it is safe, else made up (coupon.http.request_id_hooks); no Flask here.

The id rides in each Kafka event (and as the record header of single-event records), so the consumer and
the retry job log the same id next to the DB row it became.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from coupon.observability.log_format import REQUEST_ID as REQUEST_ID  # re-exported: the HTTP hooks set it

HEADER = "X-Request-Id"
KAFKA_HEADER = "x-request-id"
MAX_LENGTH = 64
# Letters, digits and . _ : - only: an id is logged and echoed, so it must not carry quotes, spaces or newlines.
_SAFE = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_LENGTH}}}")


def accept(value: object) -> str | None:
    """The id if it is a safe one (bounded, plain characters), else None."""
    if isinstance(value, str) and _SAFE.fullmatch(value):
        return value
    return None


def new_id() -> str:
    # 16 hex characters: unique enough to follow a request, and cheaper than uuid4 on the hot path.
    return os.urandom(8).hex()


def start(environ: Mapping[str, object]) -> str:
    """Bind this request's id, from its WSGI environ (X-Request-Id when safe, else a new one), and return it."""
    # The environ directly: half the cost of reading it through a request's headers on the hot path.
    request_id = accept(environ.get("HTTP_X_REQUEST_ID")) or new_id()
    REQUEST_ID.set(request_id)
    return request_id


def current() -> str | None:
    return REQUEST_ID.get()


def bind(request_id: str | None) -> None:
    """Make `request_id` the id of what this greenlet/thread logs next (None clears it)."""
    REQUEST_ID.set(request_id)
