"""The HTTP side of request ids: read X-Request-Id (or make one up) first thing, echo it on every response."""

from __future__ import annotations

from flask import Flask, Response, request

from coupon.observability.request_ids import HEADER, REQUEST_ID, start


def _start() -> None:
    start(request.environ)


def _finish(response: Response) -> Response:
    response.headers[HEADER] = REQUEST_ID.get() or ""
    return response


def init_app(app: Flask) -> None:
    # First of the before-request hooks, so even a failing one answers with the id.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
