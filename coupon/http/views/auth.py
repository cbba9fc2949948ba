"""Login, refresh and logout: a short-lived JWT access token and a rotating, single-use refresh token."""

from __future__ import annotations

import math
import time

from flask import Blueprint, Response

from coupon.domain.models import User
from coupon.domain.vocabulary import utcnow
from coupon.extensions import db
from coupon.http.body import json_body
from coupon.http.envelope import success
from coupon.http.guards import current_claims, user_required
from coupon.http.minting import mint_token
from coupon.http.parsing import parse_credentials, parse_refresh_token
from coupon.resources import current
from coupon.services import accounts, sessions
from coupon.settings import current as current_settings

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
    return current_settings().jwt_refresh_token_expires_seconds


@bp.post("/login")
def login() -> Response:
    creds = parse_credentials(json_body(), for_signup=False)
    result = accounts.login(db.session, current().hasher, creds, mint_token, current().limiter)
    refresh = sessions.start(db.session, result.user.id, utcnow(), _refresh_lifetime())
    return _tokens(result.user, result.access_token, result.expires_in, refresh)


@bp.post("/refresh")
def refresh() -> Response:
    token = parse_refresh_token(json_body())
    rotated = sessions.rotate(db.session, token, mint_token, utcnow(), _refresh_lifetime())
    return _tokens(rotated.user, rotated.access_token, rotated.expires_in, rotated.refresh)


@bp.post("/logout")
@user_required
def logout() -> Response:
    token = parse_refresh_token(json_body())
    claims = current_claims()
    remaining = math.ceil(claims["exp"] - time.time())
    sessions.end(db.session, current().limiter, token, claims["sub"], claims["jti"], remaining, utcnow())
    return success({"loggedOut": True})
