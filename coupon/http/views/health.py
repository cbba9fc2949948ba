"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response
from sqlalchemy import text

from coupon.extensions import db
from coupon.http.envelope import respond, success
from coupon.resources import current
from coupon.services.readiness import Check, readiness

bp = Blueprint("health", __name__)


@bp.get("/health")
def live() -> Response:
    return success({"status": "UP"})


def dependency_checks() -> dict[str, Check]:
    """What readiness asks, inside a request: also read by /metrics (coupon_dependency_up)."""
    resources, session = current(), db.session
    gate, publisher = resources.gate, resources.publisher

    def kafka() -> None:
        publisher.check()
        publisher.ping()

    return {
        "redis": gate.client.ping,
        "database": lambda: session.execute(text("SELECT 1")),
        "kafka": kafka,
    }


@bp.get("/health/ready")
def ready() -> Response:
    ok, report = readiness(dependency_checks())
    body = {"status": "UP" if ok else "DOWN", "checks": report}
    if ok:
        return success(body)
    return respond(
        {
            "resultType": "ERROR",
            "data": body,
            "errorMessage": {"code": "E5030", "message": "A dependency is down", "data": None},
        },
        503,
    )
