"""Minting access tokens with flask-jwt-extended (HS256 pinned, so coupon.http.access_tokens can verify them)."""

from __future__ import annotations

from flask import Flask
from flask_jwt_extended import create_access_token

from coupon.domain.models import User
from coupon.domain.vocabulary import Role
from coupon.extensions import jwt
from coupon.settings import current as current_settings


def init_app(app: Flask) -> None:
    # Pinned: the verifier in coupon.http.access_tokens accepts HS256 and nothing else.
    app.config["JWT_ALGORITHM"] = "HS256"
    app.config["JWT_DECODE_ALGORITHMS"] = [app.config["JWT_ALGORITHM"]]
    app.config["JWT_TOKEN_LOCATION"] = ["headers"]
    jwt.init_app(app)


def mint_token(user: User) -> tuple[str, int]:
    expires = current_settings().jwt_access_token_expires_seconds
    token = create_access_token(identity=user.id, additional_claims={"role": user.role.value})
    return token, expires


def user_token(user_id: str) -> str:
    """A USER-role token for an id (bulk minting for load runs)."""
    token: str = create_access_token(identity=user_id, additional_claims={"role": Role.USER.value})
    return token
