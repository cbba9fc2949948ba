"""The JSON request bodies: sign-up, login, refresh/logout, a new coupon and an admin's change to one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from coupon.domain import commands
from coupon.domain.vocabulary import CouponStatus, CouponType, DiscountType
from coupon.http.schemas.fields import (
    MAX_PERCENTAGE,
    NEVER_NULL,
    USERNAME_CHARACTERS,
    CouponName,
    DiscountValue,
    LoginName,
    Password,
    Quantity,
    RefreshToken,
    SignupPassword,
    Timestamp,
    Username,
)
from coupon.http.schemas.problems import RequestModel


class Signup(RequestModel):
    username: Username
    password: SignupPassword

    reasons: ClassVar[Mapping[tuple[str, str | None], str]] = {
        ("username", "string_pattern_mismatch"): USERNAME_CHARACTERS
    }


class Credentials(RequestModel):
    """Login."""

    # Lenient about what a name may hold, strict about sizes only.

    username: LoginName
    password: Password


class RefreshRequest(RequestModel):
    """Refresh and logout."""

    # Whether it is a real token is for the service to find out.

    refresh_token: RefreshToken


class CouponDraft(RequestModel):
    """A new coupon: its gate is primed at once."""

    # `check` needs context={"now": <naive UTC>} to judge expiresAt.

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Black Friday pizza",
                    "type": "PIZZA",
                    "discountType": "FIXED",
                    "discountValue": 3000,
                    "totalQuantity": 100,
                    "expiresAt": "2999-12-31T00:00:00Z",
                }
            ]
        }
    )

    name: CouponName
    type: CouponType
    discount_type: DiscountType
    discount_value: DiscountValue
    total_quantity: Quantity
    issue_starts_at: Timestamp | None = Field(None, description="default now; without an offset it means UTC")
    expires_at: Timestamp = Field(description="in the future and after issueStartsAt")

    def command(self, now: datetime) -> commands.CouponDraft:
        """The window opens `now` (naive UTC) unless the draft says when."""
        return commands.CouponDraft(
            name=self.name,
            type=self.type,
            discount_type=self.discount_type,
            discount_value=self.discount_value,
            total_quantity=self.total_quantity,
            issue_starts_at=self.issue_starts_at or now,
            expires_at=self.expires_at,
        )

    @field_validator("discount_value")
    @classmethod
    def _percentage(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        if info.data.get("discount_type") is DiscountType.PERCENTAGE and value > MAX_PERCENTAGE:
            raise PydanticCustomError("percentage", f"a percentage must not exceed {MAX_PERCENTAGE}")
        return value

    @field_validator("expires_at")
    @classmethod
    def _window(cls, value: datetime, info: ValidationInfo) -> datetime:
        now: datetime = (info.context or {})["now"]
        if value <= now:
            raise PydanticCustomError("window", "must be in the future")
        starts = info.data.get("issue_starts_at")
        if starts is not None and value <= starts:
            raise PydanticCustomError("window", "must be after issueStartsAt")
        return value


class CouponPatch(RequestModel):
    """An admin's change to a coupon: any of these fields, at least one, none null; the gate has it at once."""

    # Whether the window still ends after it starts (the other end may be the stored one) and whether a lower total
    # still covers what is reserved are for the service to decide, under the coupon's row lock.

    model_config = ConfigDict(
        json_schema_extra={
            "minProperties": 1,
            "examples": [{"status": "DISABLED"}, {"totalQuantity": 200, "expiresAt": "2999-12-31T00:00:00Z"}],
        }
    )

    status: Annotated[CouponStatus | None, NEVER_NULL] = Field(
        None, description="DISABLED is the kill switch: no request is accepted"
    )
    issue_starts_at: Annotated[Timestamp | None, NEVER_NULL] = Field(None, description="without an offset it means UTC")
    expires_at: Annotated[Timestamp | None, NEVER_NULL] = Field(
        None, description="after issueStartsAt; now or earlier closes the window"
    )
    total_quantity: Annotated[Quantity | None, NEVER_NULL] = Field(
        None, description="never below what is reserved (gate) or issued (DB): 409 E3010"
    )
    name: Annotated[CouponName | None, NEVER_NULL] = None

    def command(self) -> commands.CouponPatch:
        return commands.CouponPatch(
            status=self.status,
            issue_starts_at=self.issue_starts_at,
            expires_at=self.expires_at,
            total_quantity=self.total_quantity,
            name=self.name,
        )

    @model_validator(mode="before")
    @classmethod
    def _not_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data:
            names = ", ".join(str(info.alias) for info in cls.model_fields.values())
            raise PydanticCustomError("body", f"must set at least one of {names}")
        return data

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Left out means "unchanged"; a null would say the same thing ambiguously, so it is refused.
        if value is None:
            raise PydanticCustomError("not_null", "must not be null")
        return value

    @field_validator("expires_at")
    @classmethod
    def _window(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        starts = info.data.get("issue_starts_at")
        if value is not None and starts is not None and value <= starts:
            raise PydanticCustomError("window", "must be after issueStartsAt")
        return value
