"""The field types the bodies and queries share, with their limits: the one place each limit is declared."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, GetJsonSchemaHandler, Strict
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError

MAX_QUANTITY = 10_000_000
MAX_FIXED_DISCOUNT = 10_000_000
MAX_PERCENTAGE = 100
NAME_MAX_LENGTH = 100
USERNAME_PATTERN = r"^[A-Za-z0-9_.\-]+$"
USERNAME_CHARACTERS = "may only contain letters, digits, '_', '.' and '-'"
_MAX_TIMESTAMP_LENGTH = 40
_YEARS = (2000, 2999)


def parse_datetime(value: Any) -> datetime:
    """ISO-8601; without an offset it means UTC. Returns naive UTC."""
    if not isinstance(value, str) or len(value) > _MAX_TIMESTAMP_LENGTH:
        raise ValueError("must be an ISO-8601 date-time string")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("must be an ISO-8601 date-time, e.g. 2026-11-27T09:00:00Z") from None
    first, last = _YEARS
    if not (first <= parsed.year <= last):
        raise ValueError(f"must be a date between the years {first} and {last}")
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):  # from Python (the CLI), never from JSON
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise PydanticCustomError("timestamp", str(exc)) from None


def _number(value: Any) -> Decimal:
    # A JSON number only (a string or a bool is refused), kept exact: "0.1" stays 0.1, not its binary neighbour.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number_type", "must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PydanticCustomError("finite_number", "must be a finite number") from None
    if not number.is_finite():
        raise PydanticCustomError("finite_number", "must be a finite number")
    return number


def _cents(value: Decimal) -> Decimal:
    if value != value.quantize(Decimal("0.01")):
        raise PydanticCustomError("decimal_places", "may have at most two decimals")
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value.strip()


def _query_integer(value: Any) -> Any:
    # A query's digits as they are: no sign, no spaces, no underscores, no non-ASCII digits, at most four of them.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 4:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):  # from Python (the CLI), never from a query string
        return value
    raise PydanticCustomError("int_parsing", "must be an integer")


Timestamp = Annotated[datetime, BeforeValidator(_timestamp)]
CouponName = Annotated[str, Strict(), Field(min_length=1, max_length=NAME_MAX_LENGTH), AfterValidator(_not_blank)]
Quantity = Annotated[int, Strict(), Field(ge=1, le=MAX_QUANTITY)]
# The bounds come before the validators so that they stay the decimal's own (checked, and documented as JSON Schema
# bounds); the number check still runs first, the cents check last.
DiscountValue = Annotated[
    Decimal,
    Field(gt=0, le=MAX_FIXED_DISCOUNT, description=f"at most two decimals; a PERCENTAGE at most {MAX_PERCENTAGE}"),
    BeforeValidator(_number),
    AfterValidator(_cents),
]
Password = Annotated[str, Strict(), Field(min_length=1, max_length=128)]
SignupPassword = Annotated[str, Strict(), Field(min_length=8, max_length=128)]
LoginName = Annotated[str, Strict(), Field(min_length=1, max_length=50)]
Username = Annotated[str, Strict(), Field(min_length=3, max_length=50, pattern=USERNAME_PATTERN)]
RefreshToken = Annotated[str, Strict(), Field(min_length=1, max_length=128)]


def page_limit(default: int, maximum: int) -> Any:
    """The `limit` of a list query: 1 to `maximum`, `default` when left out."""
    return Field(default=default, ge=1, le=maximum)


QueryInteger = Annotated[int, BeforeValidator(_query_integer)]


class _NeverNull:
    """Documents a `T | None = None` field as plain T: it may be left out, and is never null on the wire."""

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = handler(schema)
        branches = [b for b in out.get("anyOf", ()) if b != {"type": "null"}]
        if len(branches) == 1:
            del out["anyOf"]
            out = {**branches[0], **out}
        return out


NEVER_NULL = _NeverNull()
