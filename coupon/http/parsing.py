"""Pure request validation: turns untrusted JSON into typed requests or a ValidationFailed listing every problem."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, TypeVar

from coupon.domain.commands import (
    CouponDraft,
    CouponPatch,
    CouponPosition,
    Credentials,
    EventsQuery,
    LedgerQuery,
    ListingQuery,
    RankPosition,
)
from coupon.domain.errors import InvalidId, InvalidIdempotencyKey, MalformedJson, ValidationFailed
from coupon.domain.identifiers import CANONICAL_UUID
from coupon.domain.vocabulary import CouponPhase, CouponStatus, CouponType, DiscountType
from coupon.http.cursors import decode_coupon_cursor, decode_event_cursor, decode_rank_cursor

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{3,50}$")
MAX_QUANTITY = 10_000_000
MAX_FIXED_DISCOUNT = Decimal("10000000")

E = TypeVar("E", bound=Enum)


class _Problems:
    """Collects every field problem so one reply lists them all."""

    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, field: str, reason: str) -> None:
        self.items.append({"field": field, "reason": reason})

    def raise_if_any(self) -> None:
        if self.items:
            fields = ", ".join(p["field"] for p in self.items)
            raise ValidationFailed(f"Invalid fields: {fields}", data=self.items)


def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise MalformedJson()
    return body


# The form every id this service hands out has; it needs no parsing (a hot-path saving on every request).


def parse_uuid(value: str) -> str:
    if isinstance(value, str) and CANONICAL_UUID.fullmatch(value):
        return value
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        raise InvalidId(data={"id": value[:64] if isinstance(value, str) else None}) from None
    return str(parsed)


IDEMPOTENCY_KEY_RE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")


def parse_idempotency_key(value: str | None) -> str | None:
    """The Idempotency-Key header: absent, or 1-100 characters of letters, digits and _ . : -"""
    if value is None:
        return None
    if not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise InvalidIdempotencyKey(data={"header": "Idempotency-Key"})
    return value


def _reject_unknown(body: dict[str, Any], allowed: set[str], problems: _Problems) -> None:
    for key in body:
        if key not in allowed:
            problems.add(str(key)[:64], "unknown field")


def _string(body: dict[str, Any], field: str, problems: _Problems, *, min_len: int, max_len: int) -> str | None:
    value = body.get(field)
    if value is None:
        problems.add(field, "is required")
        return None
    if not isinstance(value, str):
        problems.add(field, "must be a string")
        return None
    if not (min_len <= len(value) <= max_len):
        problems.add(field, f"must be {min_len} to {max_len} characters long")
        return None
    return value


def parse_credentials(body: Any, *, for_signup: bool) -> Credentials:
    body = require_object(body)
    problems = _Problems()
    _reject_unknown(body, {"username", "password"}, problems)
    username = _string(body, "username", problems, min_len=3 if for_signup else 1, max_len=50)
    password = _string(body, "password", problems, min_len=8 if for_signup else 1, max_len=128)
    if for_signup and username is not None and not USERNAME_RE.fullmatch(username):
        problems.add("username", "may only contain letters, digits, '_', '.' and '-'")
    problems.raise_if_any()
    assert username is not None and password is not None
    return Credentials(username=username, password=password)


def parse_refresh_token(body: Any) -> str:
    """`{refreshToken}` of refresh and logout; whether it is a real token is for the service to find out."""
    body = require_object(body)
    problems = _Problems()
    _reject_unknown(body, {"refreshToken"}, problems)
    token = _string(body, "refreshToken", problems, min_len=1, max_len=128)
    problems.raise_if_any()
    assert token is not None
    return token


def parse_datetime(value: Any) -> datetime:
    """ISO-8601; without an offset it means UTC. Returns naive UTC."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be an ISO-8601 date-time string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time, e.g. 2026-11-27T09:00:00Z") from None
    if not (2000 <= parsed.year <= 2999):
        raise ValueError("must be a date between the years 2000 and 2999")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _enum_field(body: dict[str, Any], field: str, enum_cls: type[E], problems: _Problems) -> E | None:
    value = body.get(field)
    if value is None:
        problems.add(field, "is required")
        return None
    allowed = [m.value for m in enum_cls]
    if not isinstance(value, str) or value not in allowed:
        problems.add(field, f"must be one of {', '.join(allowed)}")
        return None
    return enum_cls(value)


def _date_field(body: dict[str, Any], field: str, problems: _Problems, *, required: bool) -> datetime | None:
    value = body.get(field)
    if value is None:
        if required:
            problems.add(field, "is required")
        return None
    try:
        return parse_datetime(value)
    except ValueError as exc:
        problems.add(field, str(exc))
        return None


def parse_coupon_draft(body: Any, now: datetime) -> CouponDraft:
    """Validate a coupon creation request; `now` is naive UTC."""
    body = require_object(body)
    problems = _Problems()
    _reject_unknown(
        body,
        {"name", "type", "discountType", "discountValue", "totalQuantity", "issueStartsAt", "expiresAt"},
        problems,
    )
    name = _string(body, "name", problems, min_len=1, max_len=100)
    if name is not None and not name.strip():
        problems.add("name", "must not be blank")
        name = None
    ctype = _enum_field(body, "type", CouponType, problems)
    dtype = _enum_field(body, "discountType", DiscountType, problems)

    value = body.get("discountValue")
    discount: Decimal | None = None
    if value is None:
        problems.add("discountValue", "is required")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.add("discountValue", "must be a number")
    else:
        try:
            discount = Decimal(str(value))
        except InvalidOperation:
            discount = None
        if discount is None or not discount.is_finite():
            problems.add("discountValue", "must be a finite number")
            discount = None
        elif discount > MAX_FIXED_DISCOUNT:
            problems.add("discountValue", f"must not exceed {MAX_FIXED_DISCOUNT}")
            discount = None
        elif discount <= 0:
            problems.add("discountValue", "must be greater than 0")
            discount = None
        elif discount != discount.quantize(Decimal("0.01")):
            problems.add("discountValue", "may have at most two decimals")
            discount = None
        elif dtype is DiscountType.PERCENTAGE and discount > 100:
            problems.add("discountValue", "a percentage must not exceed 100")
            discount = None

    qty = body.get("totalQuantity")
    quantity: int | None = None
    if qty is None:
        problems.add("totalQuantity", "is required")
    elif isinstance(qty, bool) or not isinstance(qty, int):
        problems.add("totalQuantity", "must be an integer")
    elif not (1 <= qty <= MAX_QUANTITY):
        problems.add("totalQuantity", f"must be between 1 and {MAX_QUANTITY}")
    else:
        quantity = qty

    starts = _date_field(body, "issueStartsAt", problems, required=False)
    expires = _date_field(body, "expiresAt", problems, required=True)
    if expires is not None and expires <= now:
        problems.add("expiresAt", "must be in the future")
    elif expires is not None and starts is not None and expires <= starts:
        problems.add("expiresAt", "must be after issueStartsAt")

    problems.raise_if_any()
    assert name and ctype and dtype and discount is not None and quantity and expires
    return CouponDraft(
        name=name.strip(),
        type=ctype,
        discount_type=dtype,
        discount_value=discount,
        total_quantity=quantity,
        issue_starts_at=starts or now,
        expires_at=expires,
    )


FAILURE_STATUSES = ("PENDING", "RESOLVED", "DEAD")
MAX_LIST_LIMIT = 500


def parse_failure_query(args: dict[str, str]) -> tuple[str | None, int]:
    """?status=PENDING|RESOLVED|DEAD&limit=1..500 (default 50); unknown parameters are rejected."""
    problems = _Problems()
    _reject_unknown(args, {"status", "limit"}, problems)
    status = args.get("status")
    if status is not None and status not in FAILURE_STATUSES:
        problems.add("status", f"must be one of {', '.join(FAILURE_STATUSES)}")
    raw = args.get("limit", "50")
    limit = 0
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= MAX_LIST_LIMIT):
        problems.add("limit", f"must be an integer from 1 to {MAX_LIST_LIMIT}")
    else:
        limit = int(raw)
    problems.raise_if_any()
    return status, limit


PATCH_FIELDS = ("status", "issueStartsAt", "expiresAt", "totalQuantity", "name")


def _quantity(value: Any, field: str, problems: _Problems) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.add(field, "must be an integer")
        return None
    if not (1 <= value <= MAX_QUANTITY):
        problems.add(field, f"must be between 1 and {MAX_QUANTITY}")
        return None
    return value


def parse_coupon_patch(body: Any) -> CouponPatch:
    """PATCH /api/coupon/{id}: any of status, issueStartsAt, expiresAt, totalQuantity, name; at least one.

    Whether the window still ends after it starts (the other end may be the stored one) and whether a lower total
    still covers what is reserved are for the service to decide, under the coupon's row lock.
    """
    body = require_object(body)
    problems = _Problems()
    _reject_unknown(body, set(PATCH_FIELDS), problems)
    if not body:
        problems.add("body", f"must set at least one of {', '.join(PATCH_FIELDS)}")
    for key in PATCH_FIELDS:
        if key in body and body[key] is None:
            problems.add(key, "must not be null")
    status = _enum_field(body, "status", CouponStatus, problems) if body.get("status") is not None else None
    starts = _date_field(body, "issueStartsAt", problems, required=False)
    expires = _date_field(body, "expiresAt", problems, required=False)
    if starts is not None and expires is not None and expires <= starts:
        problems.add("expiresAt", "must be after issueStartsAt")
    quantity = (
        _quantity(body["totalQuantity"], "totalQuantity", problems) if body.get("totalQuantity") is not None else None
    )
    name: str | None = None
    if body.get("name") is not None:
        name = _string(body, "name", problems, min_len=1, max_len=100)
        if name is not None and not name.strip():
            problems.add("name", "must not be blank")
            name = None
    problems.raise_if_any()
    return CouponPatch(
        status=status,
        issue_starts_at=starts,
        expires_at=expires,
        total_quantity=quantity,
        name=name.strip() if name is not None else None,
    )


LISTING_LIMIT = (20, 100)  # (default, maximum) of GET /api/coupon
LEDGER_LIMIT = (100, 1000)  # GET /api/coupon/{id}/issued
EVENTS_LIMIT = (20, 100)  # GET /api/coupon/{id}/events
_BAD_CURSOR = "is not a cursor of this list (pass the nextCursor of the previous page)"


def _limit(args: dict[str, str], bounds: tuple[int, int], problems: _Problems) -> int:
    default, maximum = bounds
    raw = args.get("limit")
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 4 and 1 <= int(raw) <= maximum):
        problems.add("limit", f"must be an integer from 1 to {maximum}")
        return default
    return int(raw)


def _choice(args: dict[str, str], field: str, enum_cls: type[E], problems: _Problems) -> E | None:
    raw = args.get(field)
    if raw is None:
        return None
    allowed = [m.value for m in enum_cls]
    if raw not in allowed:
        problems.add(field, f"must be one of {', '.join(allowed)}")
        return None
    return enum_cls(raw)


def parse_listing_query(args: dict[str, str]) -> ListingQuery:
    """?status=ACTIVE|DISABLED&phase=live|upcoming|ended&limit=1..100 (default 20)&cursor=<nextCursor>."""
    problems = _Problems()
    _reject_unknown(args, {"status", "phase", "limit", "cursor"}, problems)
    status = _choice(args, "status", CouponStatus, problems)
    phase = _choice(args, "phase", CouponPhase, problems)
    limit = _limit(args, LISTING_LIMIT, problems)
    after: CouponPosition | None = None
    if "cursor" in args:
        try:
            after = decode_coupon_cursor(args["cursor"])
        except ValueError:
            problems.add("cursor", _BAD_CURSOR)
    problems.raise_if_any()
    return ListingQuery(status=status, phase=phase, limit=limit, after=after)


def parse_ledger_query(args: dict[str, str]) -> LedgerQuery:
    """?limit=1..1000 (default 100)&cursor=<nextCursor>."""
    problems = _Problems()
    _reject_unknown(args, {"limit", "cursor"}, problems)
    limit = _limit(args, LEDGER_LIMIT, problems)
    after: RankPosition | None = None
    if "cursor" in args:
        try:
            after = decode_rank_cursor(args["cursor"])
        except ValueError:
            problems.add("cursor", _BAD_CURSOR)
    problems.raise_if_any()
    return LedgerQuery(limit=limit, after=after)


def parse_events_query(args: dict[str, str]) -> EventsQuery:
    """?limit=1..100 (default 20)&cursor=<nextCursor>."""
    problems = _Problems()
    _reject_unknown(args, {"limit", "cursor"}, problems)
    limit = _limit(args, EVENTS_LIMIT, problems)
    before_id: int | None = None
    if "cursor" in args:
        try:
            before_id = decode_event_cursor(args["cursor"])
        except ValueError:
            problems.add("cursor", _BAD_CURSOR)
    problems.raise_if_any()
    return EventsQuery(limit=limit, before_id=before_id)
