"""Sign-up, and account deletion by an admin."""
from __future__ import annotations

from flask import Blueprint, Response

from coupon.api import deps
from coupon.api.requests import json_body
from coupon.auth import admin_required, current_user_id
from coupon.envelope import success
from coupon.services import users
from coupon.validation import parse_credentials, parse_uuid

bp = Blueprint("users", __name__, url_prefix="/api/users")


@bp.post("/signup")
def signup() -> Response:
    creds = parse_credentials(json_body(), for_signup=True)
    user = users.signup(deps.session(), deps.hasher(), creds)
    return success(users.user_view(user), 201)


@bp.delete("/<user_id>")
@admin_required
def delete(user_id: str) -> Response:
    uid = parse_uuid(user_id)
    users.delete_user(deps.session(), deps.limiter(), uid, current_user_id())
    return success({"id": uid, "deleted": True})
