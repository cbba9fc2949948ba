"""Admission of every /api request before its view: per-user (admin) and per-address limits, deleted accounts,
revoked access tokens.

One limiter call per request (one shared Redis round trip): the bearer token is verified here once and its
claims are left on flask.g for the view's guard; a bad token is left for that guard to refuse. The issue
request is the exception: its service admits it in the same batch as its gate call (see DEFERRED_ENDPOINTS).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request

from coupon.domain.client_address import client_address
from coupon.domain.vocabulary import Role
from coupon.http.access_tokens import bearer_claims
from coupon.resources import current
from coupon.services.refusals import refusal

# Routes that take no token: a bearer sent to them is ignored (neither counted nor refused).
PUBLIC_ENDPOINTS = frozenset({"users.signup", "auth.login", "auth.refresh", "docs.openapi"})
# Routes whose service runs the limiter itself, in the batch that also calls the gate: the hot path then pays one
# shared round trip fewer. Their view passes deferred_address() along; the limits and their answers are the same.
DEFERRED_ENDPOINTS = frozenset({"coupons.issue"})


def init_app(app: Flask) -> None:
    app.before_request(admit)


def _bearer_claims() -> dict[str, Any] | None:
    claims = bearer_claims(request.environ.get("HTTP_AUTHORIZATION", ""), current().jwt_key)
    if claims is not None:
        g.jwt_claims = claims
    return claims


def is_admin(claims: dict[str, Any]) -> bool:
    """Admin tokens are limited by the admin limit (a polling dashboard), every other token by the user limit."""
    return claims.get("role") == Role.ADMIN.value


def admit() -> None:
    if not request.path.startswith("/api/"):
        return  # health checks and metrics scrapes are never limited
    resources = current()
    limiter = resources.limiter
    address = None
    if limiter.address.enabled:
        address = client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), resources.trusted_proxies)
    public = request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS  # None: no such route
    claims = None if public else _bearer_claims()
    if claims is not None and request.endpoint in DEFERRED_ENDPOINTS:
        g.client_address = address
        return
    if claims is None:
        decision = limiter.admit(None, address)
    else:
        decision = limiter.admit(claims["sub"], address, claims["jti"], is_admin(claims))
    error = refusal(decision)
    if error is not None:
        raise error


def deferred_address() -> str | None:
    """The client address a deferred endpoint's service is to limit (None when address limits are off)."""
    address: str | None = g.get("client_address")
    return address
