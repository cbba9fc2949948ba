"""JWT set-up: token minting, the guards views use, and JWT failures mapped to the error vocabulary."""
from __future__ import annotations

from datetime import timedelta
from functools import wraps
from typing import Any, Callable, TypeVar

from flask import Flask, current_app
from flask_jwt_extended import create_access_token, get_jwt, get_jwt_identity, verify_jwt_in_request
from flask_jwt_extended.exceptions import JWTExtendedException, NoAuthorizationError
from jwt.exceptions import ExpiredSignatureError, PyJWTError

from coupon.domain import Role
from coupon.errors import Forbidden, InvalidToken, MissingToken, TokenExpired
from coupon.extensions import jwt
from coupon.models import User

F = TypeVar("F", bound=Callable[..., Any])


def init_app(app: Flask) -> None:
    app.config.setdefault("JWT_ALGORITHM", "HS256")
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


def _verify() -> None:
    try:
        verify_jwt_in_request()
    except NoAuthorizationError:
        raise MissingToken() from None
    except ExpiredSignatureError:
        raise TokenExpired() from None
    except (JWTExtendedException, PyJWTError):
        raise InvalidToken() from None


def user_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _verify()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def admin_required(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _verify()
        if get_jwt().get("role") != Role.ADMIN.value:
            raise Forbidden()
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def current_user_id() -> str:
    identity = get_jwt_identity()
    if not isinstance(identity, str):
        raise InvalidToken()
    return identity
