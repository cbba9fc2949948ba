"""The query strings of the lists: coupons, winners, change events and failure records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import PlainValidator, WithJsonSchema

from coupon.domain.commands import CouponPosition, EventsQuery, LedgerQuery, ListingQuery, RankPosition
from coupon.domain.vocabulary import CouponPhase, CouponStatus, FailureStatus
from coupon.http.cursors import (
    CURSOR_ALPHABET,
    MAX_CURSOR_LENGTH,
    decode_coupon_cursor,
    decode_event_cursor,
    decode_rank_cursor,
)
from coupon.http.schemas.fields import NEVER_NULL, QueryInteger, page_limit
from coupon.http.schemas.problems import RequestModel

_CURSOR_SCHEMA: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_CURSOR_LENGTH,
    "pattern": f"^{CURSOR_ALPHABET}$",
    "description": "the nextCursor of the previous page (opaque)",
}
# (default, maximum) of each list's `limit`.
LISTING_LIMIT = (20, 100)
LEDGER_LIMIT = (100, 1000)
EVENTS_LIMIT = (20, 100)
FAILURES_LIMIT = (50, 500)
_BAD_CURSOR = "is not a cursor of this list (pass the nextCursor of the previous page)"

CouponCursor = Annotated[CouponPosition, PlainValidator(decode_coupon_cursor), WithJsonSchema(_CURSOR_SCHEMA)]
RankCursor = Annotated[RankPosition, PlainValidator(decode_rank_cursor), WithJsonSchema(_CURSOR_SCHEMA)]
EventCursor = Annotated[int, PlainValidator(decode_event_cursor), WithJsonSchema(_CURSOR_SCHEMA)]


class ListParams(RequestModel):
    """A query string: every value a string; an integer is plain ASCII digits."""

    bounds_reason: ClassVar[str] = "must be an integer from {ge} to {le}"
    reasons: ClassVar[Mapping[tuple[str, str | None], str]] = {("cursor", None): _BAD_CURSOR}


class ListingParams(ListParams):
    """GET /api/coupon: newest first."""

    status: Annotated[CouponStatus | None, NEVER_NULL] = None
    phase: Annotated[CouponPhase | None, NEVER_NULL] = None
    limit: QueryInteger = page_limit(*LISTING_LIMIT)
    cursor: Annotated[CouponCursor | None, NEVER_NULL] = None

    def command(self) -> ListingQuery:
        return ListingQuery(status=self.status, phase=self.phase, limit=self.limit, after=self.cursor)


class LedgerParams(ListParams):
    """GET /api/coupon/{id}/issued: by rank."""

    limit: QueryInteger = page_limit(*LEDGER_LIMIT)
    cursor: Annotated[RankCursor | None, NEVER_NULL] = None

    def command(self) -> LedgerQuery:
        return LedgerQuery(limit=self.limit, after=self.cursor)


class EventsParams(ListParams):
    """GET /api/coupon/{id}/events: newest first."""

    limit: QueryInteger = page_limit(*EVENTS_LIMIT)
    cursor: Annotated[EventCursor | None, NEVER_NULL] = None

    def command(self) -> EventsQuery:
        return EventsQuery(limit=self.limit, before_id=self.cursor)


class FailuresParams(ListParams):
    """GET /api/admin/failures: newest first."""

    status: Annotated[FailureStatus | None, NEVER_NULL] = None
    limit: QueryInteger = page_limit(*FAILURES_LIMIT)


LIST_QUERIES: tuple[type[ListParams], ...] = (ListingParams, LedgerParams, EventsParams, FailuresParams)
