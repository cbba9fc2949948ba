"""The request headers the API reads besides Authorization: Idempotency-Key on the issue request."""

from __future__ import annotations

from typing import Any

from coupon.domain.identifiers import IDEMPOTENCY_KEY_MAX_LENGTH

# Read on the hot path by coupon.http.parsing with a compiled regex, not a model; the document shows the same pattern.
IDEMPOTENCY_KEY_PATTERN = rf"[A-Za-z0-9_.:\-]{{1,{IDEMPOTENCY_KEY_MAX_LENGTH}}}"

IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry a request with the same key (after a timeout or a 503 E5034) and get the same answer:"
    " the same 202 and rank while the reservation stands, never 409 duplicate.",
    "schema": {"type": "string", "pattern": f"^{IDEMPOTENCY_KEY_PATTERN}$"},
}
