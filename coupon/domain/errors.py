"""The one error vocabulary: every failure the API can answer, with its HTTP status and stable code."""

from __future__ import annotations

import math
from typing import Any

from coupon.domain.identifiers import IDEMPOTENCY_KEY_MAX_LENGTH


def _retry_after_header(seconds: float) -> int:
    """Whole seconds, at least 1: the Retry-After header the handler sends for any error with `retry_after`."""
    return max(1, math.ceil(seconds))


class AppError(Exception):
    """Base of every answerable error; the handler renders it into the envelope, with Retry-After when the error
    has a `retry_after`: the caller's, else its class's `default_retry_after` (None: no header)."""

    status: int = 500
    code: str = "E5000"
    message: str = "Internal error"
    default_retry_after: float | None = None

    def __init__(self, message: str | None = None, data: Any = None, *, retry_after: float | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.data = data
        seconds = self.default_retry_after if retry_after is None else retry_after
        self.retry_after = None if seconds is None else _retry_after_header(seconds)


# --- E1xxx: authentication and authorization -------------------------------------------------
class MissingToken(AppError):
    status, code, message = 401, "E1001", "Authorization header with a Bearer token is required"


class InvalidToken(AppError):
    status, code, message = 401, "E1002", "The access token is invalid"


class TokenExpired(AppError):
    status, code, message = 401, "E1003", "The access token has expired"


class Forbidden(AppError):
    status, code, message = 403, "E1004", "This action requires the ADMIN role"


class BadCredentials(AppError):
    status, code, message = 401, "E1005", "Username or password is incorrect"


class AccountDeleted(AppError):
    status, code, message = 401, "E1006", "The account of this access token has been deleted"


class RefreshTokenInvalid(AppError):
    status, code, message = 401, "E1007", "The refresh token is unknown, expired or revoked; log in again"


class RefreshTokenReused(AppError):
    """A rotated (already used) refresh token came back: it was stolen or replayed, so its whole family is revoked."""

    status, code, message = (
        401,
        "E1008",
        "This refresh token was already used; every token of its session has been revoked, log in again",
    )


class TokenRevoked(AppError):
    status, code, message = 401, "E1009", "The access token has been revoked (logged out)"


# --- E2xxx: users ----------------------------------------------------------------------------
class UsernameTaken(AppError):
    status, code, message = 409, "E2001", "This username is already taken"


class UserNotFound(AppError):
    status, code, message = 404, "E2002", "User not found"


class CannotDeleteSelf(AppError):
    status, code, message = 409, "E2003", "An admin cannot delete their own account"


# --- E3xxx: coupons --------------------------------------------------------------------------
class CouponNotFound(AppError):
    status, code, message = 404, "E3001", "Coupon not found"


class AlreadyParticipated(AppError):
    status, code, message = 409, "E3002", "You have already requested this coupon"


class SoldOut(AppError):
    status, code, message = 409, "E3003", "This coupon is sold out"


class IssueNotStarted(AppError):
    status, code, message = 409, "E3004", "The issue window of this coupon has not opened yet"


class IssueEnded(AppError):
    status, code, message = 409, "E3005", "This coupon has expired; it can no longer be issued"


class CouponDisabled(AppError):
    status, code, message = 409, "E3006", "This coupon is disabled"


class IssuedCouponNotOwned(AppError):
    status, code, message = 404, "E3007", "You do not own this coupon"


class CouponAlreadyUsed(AppError):
    status, code, message = 409, "E3008", "This coupon has already been used"


class CouponExpired(AppError):
    status, code, message = 409, "E3009", "This coupon has expired and can no longer be used"


class QuantityBelowReserved(AppError):
    """A PATCH lowering totalQuantity below what the gate has reserved or the DB has issued; data {reserved, issued}."""

    status, code, message = 409, "E3010", "The quantity cannot be lowered below what is already reserved or issued"


# --- E4xxx: request validation ---------------------------------------------------------------
class ValidationFailed(AppError):
    status, code, message = 400, "E4000", "The request is invalid"


class MalformedJson(AppError):
    status, code, message = 400, "E4001", "The request body must be a JSON object"


class BodyTooLarge(AppError):
    status, code, message = 400, "E4002", "The request body is too large"


class InvalidId(AppError):
    status, code, message = 400, "E4003", "The id in the path must be a UUID"


class RouteNotFound(AppError):
    status, code, message = 404, "E4004", "No such endpoint"


class MethodNotAllowed(AppError):
    status, code, message = 405, "E4005", "This method is not allowed on this endpoint"


class UnsupportedMediaType(AppError):
    status, code, message = 415, "E4006", "The request body must be sent as Content-Type: application/json"


class InvalidIdempotencyKey(AppError):
    status, code, message = (
        400,
        "E4007",
        f"The Idempotency-Key header must be 1-{IDEMPOTENCY_KEY_MAX_LENGTH} letters, digits or _ . : -",
    )


# --- E429 and E503x: load and dependencies ---------------------------------------------------
class RateLimited(AppError):
    status, code, message = 429, "E429", "Too many requests; slow down"
    default_retry_after = 1


class RedisUnavailable(AppError):
    """Nothing was reserved. `retry_after` is set while a lost gate waits out what was in flight before its rebuild."""

    status, code, message = 503, "E5031", "The coupon gate (Redis) is unavailable; try again"


class KafkaUnavailable(AppError):
    status, code, message = 503, "E5032", "The issue queue (Kafka) is unavailable; nothing was reserved, try again"


class IssueNotConfirmed(AppError):
    """A dependency timed out mid-request: the reservation or its record may exist. Settled later, never lost."""

    status, code, message = (
        503,
        "E5034",
        "Your request could not be confirmed in time (a dependency is slow); its outcome is being settled. Check"
        " GET /api/coupon/{id}/issue, or retry with the same Idempotency-Key header",
    )


class HashingBusy(AppError):
    """Every password-hashing slot of this worker is taken (a signup/login rush): refused at once, not queued."""

    status, code, message = (
        503,
        "E5035",
        "Too many sign-ups and logins at this moment; retry after the Retry-After delay",
    )

    default_retry_after = 1


class IssueQueueFull(AppError):
    """Load shedding: the request waited too long for a batch and was dropped unsent. Nothing was reserved, and
    unlike E5032 no dependency is down: the API is busier than it can answer in time."""

    status, code, message = (
        503,
        "E5036",
        "Too many issue requests are waiting; nothing was reserved, retry after the Retry-After delay",
    )

    default_retry_after = 1


class DatabaseUnavailable(AppError):
    status, code, message = 503, "E5033", "The database is unavailable; try again"


class InternalError(AppError):
    status, code, message = 500, "E5000", "Internal error"


def all_error_classes() -> list[type[AppError]]:
    """Every concrete error, in code order: the error table of docs/API.md and the tests are built from it."""
    seen: list[type[AppError]] = []
    stack = list(AppError.__subclasses__())
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: c.code)
