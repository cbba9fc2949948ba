"""Login: username and password for a JWT access token."""
from __future__ import annotations

from flask import Blueprint, Response

from coupon.api import deps
from coupon.api.requests import json_body
from coupon.auth import mint_token
from coupon.envelope import success
from coupon.services import users
from coupon.validation import parse_credentials

bp = Blueprint("auth", __name__, url_prefix="/api/auth")


@bp.post("/login")
def login() -> Response:
    creds = parse_credentials(json_body(), for_signup=False)
    result = users.login(deps.session(), deps.hasher(), creds, mint_token, deps.limiter())
    return success(
        {
            "id": result.user.id,
            "username": result.user.username,
            "role": result.user.role.value,
            "accessToken": result.access_token,
            "expiresIn": result.expires_in,
        }
    )
