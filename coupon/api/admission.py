"""Admission of every /api request before its view: per-user and per-address rate limits, deleted accounts.

One limiter call per request (one shared Redis round trip): the bearer token is verified here once and its
claims are left on flask.g for the view's guard; a bad token is left for that guard to refuse.
"""
from __future__ import annotations

from flask import Flask, current_app, g, request
from prometheus_client import Counter

from coupon.adapters.rate_limit import LimitOutcome
from coupon.api import deps
from coupon.client_address import client_address, parse_trusted
from coupon.errors import AccountDeleted, RateLimited
from coupon.tokens import TokenInvalid, verify_access_token


REFUSED = Counter("coupon_admission_refused_total", "/api requests refused before their view, by reason: "
                  "rate_limited, account_deleted", ["reason"])

# Routes that take no token: a bearer sent to them is ignored (neither counted nor refused).
PUBLIC_ENDPOINTS = frozenset({"users.signup", "auth.login", "docs.openapi"})


def init_app(app: Flask) -> None:
    app.extensions["coupon.trusted_proxies"] = parse_trusted(app.config["TRUSTED_PROXIES"])
    app.before_request(admit)


def _bearer_subject() -> str | None:
    scheme, _, token = request.environ.get("HTTP_AUTHORIZATION", "").partition(" ")
    if scheme != "Bearer" or not token:
        return None
    try:
        claims = verify_access_token(token.strip(), current_app.extensions["coupon.jwt_key"])
    except TokenInvalid:
        return None
    g.jwt_claims = claims
    return claims["sub"]


def admit() -> None:
    if not request.path.startswith("/api/"):
        return  # health checks and metrics scrapes are never limited
    limiter = deps.limiter()
    address = None
    if limiter.address.enabled:
        address = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"),
                                 current_app.extensions["coupon.trusted_proxies"])
    public = request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS  # None: no such route
    decision = limiter.admit(None if public else _bearer_subject(), address)
    if decision.outcome is LimitOutcome.LIMITED:
        REFUSED.labels("rate_limited").inc()
        raise RateLimited(retry_after=decision.retry_after_s)
    if decision.outcome is LimitOutcome.ACCOUNT_DELETED:
        REFUSED.labels("account_deleted").inc()
        raise AccountDeleted()
