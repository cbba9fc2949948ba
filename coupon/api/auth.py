"""Login, refresh and logout: a short-lived JWT access token and a rotating, single-use refresh token."""
from __future__ import annotations

import math
import time

from flask import Blueprint, Response, current_app

from coupon.api import deps
from coupon.api.requests import json_body
from coupon.auth import current_claims, mint_token, user_required
from coupon.domain import utcnow
from coupon.envelope import success
from coupon.models import User
from coupon.services import sessions, users
from coupon.validation import parse_credentials, parse_refresh_token

bp = Blueprint("auth", __name__, url_prefix="/api/auth")


def _tokens(user: User, access_token: str, expires_in: int, refresh: sessions.RefreshIssued) -> Response:
    return success(
        {
            "id": user.id,
            "username": user.username,
            "role": user.role.value,
            "accessToken": access_token,
            "expiresIn": expires_in,
            "refreshToken": refresh.token,
            "refreshExpiresIn": refresh.expires_in,
        }
    )


def _refresh_lifetime() -> int:
    return current_app.config["JWT_REFRESH_TOKEN_EXPIRES_SECONDS"]


@bp.post("/login")
def login() -> Response:
    creds = parse_credentials(json_body(), for_signup=False)
    result = users.login(deps.session(), deps.hasher(), creds, mint_token, deps.limiter())
    refresh = sessions.start(deps.session(), result.user.id, utcnow(), _refresh_lifetime())
    return _tokens(result.user, result.access_token, result.expires_in, refresh)


@bp.post("/refresh")
def refresh() -> Response:
    token = parse_refresh_token(json_body())
    rotated = sessions.rotate(deps.session(), token, mint_token, utcnow(), _refresh_lifetime())
    return _tokens(rotated.user, rotated.access_token, rotated.expires_in, rotated.refresh)


@bp.post("/logout")
@user_required
def logout() -> Response:
    token = parse_refresh_token(json_body())
    claims = current_claims()
    remaining = math.ceil(claims["exp"] - time.time())
    sessions.end(deps.session(), deps.limiter(), token, claims["sub"], claims["jti"], remaining, utcnow())
    return success({"loggedOut": True})
