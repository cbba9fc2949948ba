"""JWT set-up: flask-jwt-extended mints the tokens; the guards verify them with coupon.tokens (HS256 pinned,
exp/iat/sub/type required), which is all the hot path needs at a fraction of the cost."""
from __future__ import annotations

from datetime import timedelta
from functools import wraps
from typing import Any, Callable, TypeVar

from flask import Flask, current_app, g, request
from flask_jwt_extended import create_access_token

from coupon.domain import Role
from coupon.errors import Forbidden, InvalidToken, MissingToken, TokenExpired
from coupon.extensions import jwt
from coupon.models import User
from coupon.tokens import TokenExpiredError, TokenInvalid, verify_access_token

F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    # Pinned: the verifier in coupon.tokens accepts HS256 and nothing else.
    app.config["JWT_ALGORITHM"] = "HS256"
    app.extensions["coupon.jwt_key"] = app.config["JWT_SECRET_KEY"].encode()
    app.config["JWT_DECODE_ALGORITHMS"] = [app.config["JWT_ALGORITHM"]]
    app.config["JWT_TOKEN_LOCATION"] = ["headers"]
    app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=app.config["JWT_ACCESS_TOKEN_EXPIRES_SECONDS"])
    jwt.init_app(app)


def mint_token(user: User) -> tuple[str, int]:
    expires = current_app.config["JWT_ACCESS_TOKEN_EXPIRES_SECONDS"]
    token = create_access_token(identity=user.id, additional_claims={"role": user.role.value})
    return token, expires


def user_token(user_id: str) -> str:
    """A USER-role token for an id (bulk minting for load runs)."""
    return create_access_token(identity=user_id, additional_claims={"role": Role.USER.value})


def _verify() -> dict[str, Any]:
    """Decode the bearer token with the algorithm pinned; claims land on flask.g for the view."""
    if "jwt_claims" in g:  # already verified by coupon.api.admission for this request
        return g.jwt_claims
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or not token:
        raise MissingToken()
    try:
        claims = verify_access_token(token.strip(), current_app.extensions["coupon.jwt_key"])
    except TokenExpiredError:
        raise TokenExpired() from None
    except TokenInvalid:
        raise InvalidToken() from None
    g.jwt_claims = claims
    return claims


def user_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _verify()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _verify().get("role") != Role.ADMIN.value:
            raise Forbidden()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_user_id() -> str:
    return g.jwt_claims["sub"]


def current_claims() -> dict[str, Any]:
    """The verified claims of this request's access token (after user_required/admin_required)."""
    return g.jwt_claims
