"""What the API answers inside the envelope's `data`, and the envelope of an error: described for the document (the
views build these replies as plain dicts on the hot path; tests/unit/test_schemas.py holds the two together)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from coupon.domain.live_stock import StockStatus
from coupon.domain.vocabulary import (
    CouponAction,
    CouponPhase,
    CouponStatus,
    CouponType,
    DiscountType,
    FailureStatus,
    IssueStatus,
    Role,
)
from coupon.http.schemas.fields import NEVER_NULL

Positive = Annotated[int, Field(ge=1)]


class Reply(BaseModel):
    # defer_build: replies are only turned into the OpenAPI document, which is built on its first request.
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, defer_build=True)


class User(Reply):
    id: UUID
    username: str
    role: Role


class Login(Reply):
    id: UUID
    username: str
    role: Role
    access_token: str
    expires_in: Positive
    refresh_token: str
    refresh_expires_in: Positive


class LoggedOut(Reply):
    logged_out: Literal[True]


class Stock(Reply):
    total: int
    reserved: int
    issued: int
    remaining: int


class Coupon(Reply):
    id: UUID
    name: str
    type: CouponType
    discount_type: DiscountType
    discount_value: float
    total_quantity: int
    issue_starts_at: datetime
    expires_at: datetime
    status: CouponStatus
    created_at: datetime
    stock: Annotated[Stock | None, NEVER_NULL] = None
    phase: Annotated[CouponPhase | None, NEVER_NULL] = Field(None, description="live: the issue window is open now")


class CouponPage(Reply):
    items: list[Coupon]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class Winner(Reply):
    user_id: UUID
    username: str | None = Field(description="null once the account is deleted")
    rank: int
    issued_at: datetime
    used: bool
    used_at: datetime | None


class LedgerPage(Reply):
    items: list[Winner]
    next_cursor: str | None


class Change(Reply):
    from_: Any = Field(alias="from")
    to: Any


class CouponEvent(Reply):
    id: int
    coupon_id: UUID
    actor: str = Field(description="the admin's user id, or cli / cli:<os user>")
    actor_name: str | None = Field(description="the admin's username, if any")
    at: datetime
    action: CouponAction
    changes: dict[str, Change] = Field(description="{field: {from, to}}")


class EventsPage(Reply):
    items: list[CouponEvent]
    next_cursor: str | None


class IssueAccepted(Reply):
    coupon_id: UUID
    user_id: UUID
    status: Literal["PENDING"]
    rank: Positive
    requested_at: datetime


class IssueState(Reply):
    coupon_id: UUID
    user_id: UUID
    status: IssueStatus


class StockEvent(Reply):
    coupon_id: UUID
    total: int
    reserved: int
    remaining: Annotated[int, Field(ge=0)]
    status: StockStatus


class Usage(Reply):
    coupon_id: UUID
    user_id: UUID
    used: Literal[True]
    used_at: datetime


class OwnedCoupon(Reply):
    coupon_id: UUID
    name: str
    type: CouponType
    discount_type: DiscountType
    discount_value: float
    issued_at: datetime
    used: bool
    used_at: datetime | None
    expires_at: datetime
    rank: int


class Deleted(Reply):
    id: UUID
    deleted: Literal[True]


class FailureRecord(Reply):
    id: int
    coupon_id: str
    user_id: str
    status: FailureStatus
    retry_count: int
    resolved: bool
    error: str
    created_at: datetime
    last_retried_at: datetime | None
    resolved_at: datetime | None


class Failures(Reply):
    counts: dict[FailureStatus, int] = Field(description="records by status, every status present")
    items: list[FailureRecord]


class Health(Reply):
    status: Literal["UP"]


class Readiness(Reply):
    status: Literal["UP", "DOWN"]
    checks: dict[str, Any]


class ErrorMessage(Reply):
    code: str = Field(description="stable: docs/API.md, Error codes; each operation lists its own in x-error-codes")
    message: str
    data: Any = Field(description="E4000: [{field, reason}], one per problem; otherwise the error's details or null")


class ErrorEnvelope(Reply):
    """Every error reply: one shared shape, whatever the code."""

    result_type: Literal["ERROR"]
    data: None
    error_message: ErrorMessage


class NotReady(Reply):
    """503 E5030 of /health/ready: the one error whose `data` is not null (the checks)."""

    result_type: Literal["ERROR"]
    data: Readiness
    error_message: ErrorMessage


REPLIES: tuple[type[BaseModel], ...] = (
    User,
    Login,
    LoggedOut,
    Coupon,
    CouponPage,
    LedgerPage,
    EventsPage,
    IssueAccepted,
    IssueState,
    StockEvent,
    Usage,
    OwnedCoupon,
    Deleted,
    Failures,
    Health,
    Readiness,
    ErrorEnvelope,
    NotReady,
)
