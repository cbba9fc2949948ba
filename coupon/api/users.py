"""Sign-up."""
from __future__ import annotations

from flask import Blueprint, Response

from coupon.api import deps
from coupon.api.requests import json_body
from coupon.envelope import success
from coupon.services import users
from coupon.validation import parse_credentials

bp = Blueprint("users", __name__, url_prefix="/api/users")


@bp.post("/signup")
def signup() -> Response:
    creds = parse_credentials(json_body(), for_signup=True)
    user = users.signup(deps.session(), creds)
    return success(users.user_view(user), 201)
