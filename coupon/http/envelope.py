"""The seed's response envelope: {resultType, data, errorMessage}, as bytes (the issue lane) or a Flask reply."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from coupon.domain.errors import AppError
from coupon.http.json_provider import dumps_bytes


def success_body(data: Any) -> bytes:
    return dumps_bytes({"resultType": "SUCCESS", "data": data, "errorMessage": None})


def failure_body(error: AppError) -> bytes:
    return dumps_bytes(
        {
            "resultType": "ERROR",
            "data": None,
            "errorMessage": {"code": error.code, "message": error.message, "data": error.data},
        }
    )


def failure_headers(error: AppError) -> dict[str, str] | None:
    """Retry-After for an error that has one: the 429s and the 503s that know when to come back."""
    return None if error.retry_after is None else {"Retry-After": str(error.retry_after)}


def respond(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    return _response(dumps_bytes(body), status, headers)


def success(data: Any, status: int = 200) -> Response:
    return _response(success_body(data), status)


def failure(error: AppError) -> Response:
    return _response(failure_body(error), error.status, failure_headers(error))


def _response(body: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    resp = current_app.response_class(body, status=status, mimetype="application/json")
    if headers:
        resp.headers.update(headers)
    return resp
