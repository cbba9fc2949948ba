"""The seed's response envelope: {resultType, data, errorMessage}."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app

from coupon.domain.errors import AppError
from coupon.http.json_provider import dumps_bytes


def respond(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> Response:
    resp = current_app.response_class(dumps_bytes(body), status=status, mimetype="application/json")
    if headers:
        resp.headers.update(headers)
    return resp


def success(data: Any, status: int = 200) -> Response:
    return respond({"resultType": "SUCCESS", "data": data, "errorMessage": None}, status)


def failure(error: AppError, headers: dict[str, str] | None = None) -> Response:
    body = {
        "resultType": "ERROR",
        "data": None,
        "errorMessage": {"code": error.code, "message": error.message, "data": error.data},
    }
    return respond(body, error.status, headers)
