"""Untrusted input → the typed commands of domain/commands.py: bodies and queries through their models
(coupon/http/schemas), the hot path's id and header by hand; every problem becomes one 400."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from coupon.domain.commands import CouponDraft, CouponPatch, Credentials, EventsQuery, LedgerQuery, ListingQuery
from coupon.domain.errors import InvalidId, InvalidIdempotencyKey, MalformedJson
from coupon.domain.identifiers import CANONICAL_UUID
from coupon.http.schemas import bodies, queries
from coupon.http.schemas.headers import IDEMPOTENCY_KEY_PATTERN


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MalformedJson()
    return body


# The issue request (the hot path) reads only these two, without a model: a regex and a fast UUID check.
def parse_uuid(value: str) -> str:
    # The form every id this service hands out has needs no parsing (a saving on every request).
    if isinstance(value, str) and CANONICAL_UUID.fullmatch(value):
        return value
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidId(data={"id": value[:64] if isinstance(value, str) else None}) from None
    return str(parsed)


IDEMPOTENCY_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)


def parse_idempotency_key(value: str | None) -> str | None:
    """The Idempotency-Key header: absent, or IDEMPOTENCY_KEY_PATTERN."""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise InvalidIdempotencyKey(data={"header": "Idempotency-Key"})
    return value


def parse_credentials(body: Any, *, for_signup: bool) -> Credentials:
    model = bodies.Signup if for_signup else bodies.Credentials
    checked = model.check(require_object(body))
    return Credentials(username=checked.username, password=checked.password)


def parse_refresh_token(body: Any) -> str:
    """`{refreshToken}` of refresh and logout."""
    return bodies.RefreshRequest.check(require_object(body)).refresh_token


def parse_coupon_draft(body: Any, now: datetime) -> CouponDraft:
    """Validate a coupon creation request; `now` is naive UTC."""
    return bodies.CouponDraft.check(require_object(body), {"now": now}).command(now)


def parse_coupon_patch(body: Any) -> CouponPatch:
    """PATCH /api/coupon/{id}: any of status, issueStartsAt, expiresAt, totalQuantity, name; at least one."""
    return bodies.CouponPatch.check(require_object(body)).command()


def parse_failure_query(args: dict[str, str]) -> tuple[str | None, int]:
    """?status=PENDING|RESOLVED|DEAD&limit=…; unknown parameters are rejected."""
    query = queries.FailuresParams.check(args)
    return (query.status.value if query.status is not None else None), query.limit


def parse_listing_query(args: dict[str, str]) -> ListingQuery:
    """?status=ACTIVE|DISABLED&phase=live|upcoming|ended&limit=…&cursor=<nextCursor>."""
    return queries.ListingParams.check(args).command()


def parse_ledger_query(args: dict[str, str]) -> LedgerQuery:
    """?limit=…&cursor=<nextCursor>."""
    return queries.LedgerParams.check(args).command()


def parse_events_query(args: dict[str, str]) -> EventsQuery:
    """?limit=…&cursor=<nextCursor>."""
    return queries.EventsParams.check(args).command()
