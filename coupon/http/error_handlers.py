"""The one place errors become replies: AppError, HTTP errors, dependency failures, and the unexpected."""

from __future__ import annotations

import contextlib
import logging

from flask import Flask, Response
from kafka.errors import KafkaError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from coupon.adapters.redis_client import REDIS_ERRORS
from coupon.domain.errors import (
    AppError,
    BodyTooLarge,
    DatabaseUnavailable,
    InternalError,
    KafkaUnavailable,
    MalformedJson,
    MethodNotAllowed,
    RedisUnavailable,
    RouteNotFound,
    UnsupportedMediaType,
)
from coupon.extensions import db
from coupon.http.envelope import failure

log = logging.getLogger(__name__)

_HTTP: dict[int, type[AppError]] = {
    400: MalformedJson,
    404: RouteNotFound,
    405: MethodNotAllowed,
    413: BodyTooLarge,
    415: UnsupportedMediaType,
}


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(AppError, _app_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _app_error(error: AppError) -> Response:
    return failure(error)


def _http_error(error: HTTPException) -> Response:
    cls = _HTTP.get(error.code or 500)
    if cls is None:
        generic = AppError(error.description or error.name)
        generic.status, generic.code = error.code or 500, f"E{error.code}"
        return failure(generic)
    return failure(cls())


def _unexpected(error: Exception) -> Response:
    return failure(unexpected_error(error))


def unexpected_error(error: Exception) -> AppError:
    """What an exception that is not an AppError answers: a dependency's 503 (logged as a warning) or a 500 (logged
    with its traceback); the session's transaction is rolled back either way."""
    mapped = _dependency_error(error)
    if mapped is not None:
        log.warning("dependency failure: %s: %s", type(error).__name__, error)
    else:
        log.exception("unhandled error")
        mapped = InternalError()
    _rollback()
    return mapped


def _dependency_error(error: Exception) -> AppError | None:
    if isinstance(error, REDIS_ERRORS):
        return RedisUnavailable()
    if isinstance(error, (OperationalError, PoolTimeout)) or (
        isinstance(error, DBAPIError) and error.connection_invalidated
    ):
        return DatabaseUnavailable()
    if isinstance(error, KafkaError):
        return KafkaUnavailable()
    return None


def _rollback() -> None:
    # The session may be unusable when the DB is gone; it is discarded at teardown.
    with contextlib.suppress(Exception):
        db.session.rollback()
