"""The issue request's own lane: POST /api/coupon/<id>/issue with a valid access token, answered straight from WSGI.

It is the one hot route of a sale, and Flask's per-request dispatch (request context, URL matching, the before and
after hooks, the Response object) was a quarter of its API CPU (bench/RESULTS.md). The lane does what that path
does for this request and nothing else: the same token check, deferred admission, service call, envelope, error
answers, request id and HTTP metrics. Whatever it does not take whole goes on to Flask untouched, before anything is
read or counted: other routes and methods, a non-canonical id, a missing, bad or expired token (Flask's admission
and guard answer those as for every route).
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

from coupon.adapters.db_session import DbSession
from coupon.domain.client_address import client_address
from coupon.domain.errors import AppError
from coupon.domain.identifiers import CANONICAL_UUID
from coupon.domain.vocabulary import utcnow
from coupon.extensions import db
from coupon.http.access_tokens import bearer_claims
from coupon.http.admission import is_admin
from coupon.http.envelope import failure_body, failure_headers, success_body
from coupon.http.error_handlers import unexpected_error
from coupon.http.parsing import parse_idempotency_key
from coupon.observability import http_metrics, request_ids
from coupon.resources import Resources, of
from coupon.services import issuing

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

ENDPOINT = "coupons.issue"
_METHOD = "POST"


def init_app(app: Flask) -> None:
    """Put the lane in front of the app's dispatch (after the blueprints: it reads its path from the route)."""
    app.wsgi_app = IssueLane(app, app.wsgi_app)  # type: ignore[method-assign]


def accept_issue(
    resources: Resources,
    session: DbSession,
    coupon_id: str,
    claims: dict[str, Any],
    *,
    address: str | None,
    idempotency_key: str | None,
    request_id: str | None,
) -> dict[str, Any]:
    """One issue request of a verified user, through the issuing service; the 202's data, or an AppError."""
    now = utcnow()
    ticket = issuing.IssueTicket.new(
        coupon_id,
        claims["sub"],
        now,
        request_id=request_id,
        address=address,
        idempotency_key=parse_idempotency_key(idempotency_key),
        jti=claims["jti"],
        admin=is_admin(claims),
    )
    accepted = issuing.request_issue(session, resources.issuer, resources.recovery, ticket, now)
    return {
        "couponId": accepted.coupon_id,
        "userId": accepted.user_id,
        "status": "PENDING",
        "rank": accepted.rank,
        "requestedAt": accepted.requested_at,
    }


def _status_line(status: int) -> str:
    # Werkzeug's form, so the lane's replies and Flask's read the same.
    return f"{status} {HTTP_STATUS_CODES[status].upper()}"


class IssueLane:
    """WSGI middleware: the issue requests it can answer whole, the rest to `downstream` (Flask's wsgi_app)."""

    def __init__(self, app: Flask, downstream: WSGIApplication) -> None:
        self.app = app
        self.downstream = downstream
        rule = next(rule.rule for rule in app.url_map.iter_rules() if rule.endpoint == ENDPOINT)
        self._prefix, self._suffix = rule.split("<coupon_id>")
        self._length = len(self._prefix) + 36 + len(self._suffix)
        self._status_lines = {status: _status_line(status) for status in HTTP_STATUS_CODES}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        coupon_id = self._coupon_id(environ)
        if coupon_id is None:
            return self.downstream(environ, start_response)
        # Timed from here, as Flask's hooks time a request from before its token check.
        started = perf_counter()
        resources = of(self.app)
        claims = bearer_claims(environ.get("HTTP_AUTHORIZATION", ""), resources.jwt_key)
        if claims is None:
            return self.downstream(environ, start_response)
        return self._answer(environ, start_response, resources, coupon_id, claims, started)

    def _coupon_id(self, environ: WSGIEnvironment) -> str | None:
        if environ.get("REQUEST_METHOD") != _METHOD:
            return None
        path: str = environ.get("PATH_INFO", "")
        if len(path) != self._length or not path.startswith(self._prefix) or not path.endswith(self._suffix):
            return None
        coupon_id = path[len(self._prefix) : len(self._prefix) + 36]
        return coupon_id if CANONICAL_UUID.fullmatch(coupon_id) else None

    def _answer(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        resources: Resources,
        coupon_id: str,
        claims: dict[str, Any],
        started: float,
    ) -> Iterable[bytes]:
        request_id = request_ids.start(environ)
        headers: dict[str, str] | None = None
        # The app context: the DB session a gate rebuild reads through, removed when the context ends.
        with self.app.app_context():
            try:
                address = None
                if resources.limiter.address.enabled:
                    address = client_address(
                        environ.get("REMOTE_ADDR"), environ.get("HTTP_X_FORWARDED_FOR"), resources.trusted_proxies
                    )
                data = accept_issue(
                    resources,
                    db.session,
                    coupon_id,
                    claims,
                    address=address,
                    idempotency_key=environ.get("HTTP_IDEMPOTENCY_KEY"),
                    request_id=request_id,
                )
                status, body = 202, success_body(data)
            except Exception as exc:
                error = exc if isinstance(exc, AppError) else unexpected_error(exc)
                status, body, headers = error.status, failure_body(error), failure_headers(error)
        reply = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            (request_ids.HEADER, request_id),
        ]
        if headers:
            reply.extend(headers.items())
        start_response(self._status_lines[status], reply)
        http_metrics.record(ENDPOINT, _METHOD, status, started)
        return [body]
