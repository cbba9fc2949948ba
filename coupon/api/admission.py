"""Admission of every /api request before its view: per-user and per-address rate limits, deleted accounts.

One limiter call per request (one shared Redis round trip): the bearer token is verified here once and its
claims are left on flask.g for the view's guard; a bad token is left for that guard to refuse. The issue
request is the exception: its service admits it in the same batch as its gate call (see DEFERRED_ENDPOINTS).
"""
from __future__ import annotations

from flask import Flask, current_app, g, request

from coupon.api import deps
from coupon.client_address import client_address, parse_trusted
from coupon.services.admission import refusal
from coupon.tokens import TokenInvalid, verify_access_token


# Routes that take no token: a bearer sent to them is ignored (neither counted nor refused).
PUBLIC_ENDPOINTS = frozenset({"users.signup", "auth.login", "docs.openapi"})
# Routes whose service runs the limiter itself, in the batch that also calls the gate: the hot path then pays one
# shared round trip fewer. Their view passes deferred_address() along; the limits and their answers are the same.
DEFERRED_ENDPOINTS = frozenset({"coupons.issue"})


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
    user_id = None if public else _bearer_subject()
    if user_id is not None and request.endpoint in DEFERRED_ENDPOINTS:
        g.client_address = address
        return
    error = refusal(limiter.admit(user_id, address))
    if error is not None:
        raise error


def deferred_address() -> str | None:
    """The client address a deferred endpoint's service is to limit (None when address limits are off)."""
    return g.get("client_address")
