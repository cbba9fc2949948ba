"""Route guards: the bearer token verified with coupon.http.access_tokens (once per request), then the role."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from flask import g, request

from coupon.domain.errors import Forbidden, InvalidToken, MissingToken, TokenExpired
from coupon.domain.vocabulary import Role
from coupon.http.access_tokens import TokenExpiredError, TokenInvalid, bearer_token, verify_access_token
from coupon.resources import current

P = ParamSpec("P")
R = TypeVar("R")


def _verify() -> dict[str, Any]:
    """Decode the bearer token with the algorithm pinned; claims land on flask.g for the view."""
    if "jwt_claims" in g:  # already verified by coupon.http.admission for this request
        claims: dict[str, Any] = g.jwt_claims
        return claims
    token = bearer_token(request.environ.get("HTTP_AUTHORIZATION", ""))
    if token is None:
        raise MissingToken()
    try:
        claims = verify_access_token(token, current().jwt_key)
    except TokenExpiredError:
        raise TokenExpired() from None
    except TokenInvalid:
        raise InvalidToken() from None
    g.jwt_claims = claims
    return claims


def user_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        _verify()
        return view(*args, **kwargs)

    return wrapper


def admin_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _verify().get("role") != Role.ADMIN.value:
            raise Forbidden()
        return view(*args, **kwargs)

    return wrapper


def current_user_id() -> str:
    user_id: str = g.jwt_claims["sub"]
    return user_id


def current_claims() -> dict[str, Any]:
    """The verified claims of this request's access token (after user_required/admin_required)."""
    claims: dict[str, Any] = g.jwt_claims
    return claims
