"""GET /api/openapi.json: the API's contract (coupon/http/openapi.py), public."""

from __future__ import annotations

from flask import Blueprint, Response

from coupon.http.envelope import respond
from coupon.http.openapi import document

bp = Blueprint("docs", __name__, url_prefix="/api")


@bp.get("/openapi.json")
def openapi() -> Response:
    # The bare document, not the envelope: tools (schemathesis, Swagger UI) read it as it is.
    return respond(document(), 200)
