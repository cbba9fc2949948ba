"""Sign-up, and account deletion by an admin."""

from __future__ import annotations

from flask import Blueprint, Response

from coupon.extensions import db
from coupon.http.body import json_body
from coupon.http.envelope import success
from coupon.http.guards import admin_required, current_user_id
from coupon.http.parsing import parse_credentials, parse_uuid
from coupon.resources import current
from coupon.services import accounts

bp = Blueprint("users", __name__, url_prefix="/api/users")


@bp.post("/signup")
def signup() -> Response:
    creds = parse_credentials(json_body(), for_signup=True)
    user = accounts.signup(db.session, current().hasher, creds)
    return success(accounts.user_view(user), 201)


@bp.delete("/<user_id>")
@admin_required
def delete(user_id: str) -> Response:
    uid = parse_uuid(user_id)
    accounts.delete_user(db.session, current().limiter, uid, current_user_id())
    return success({"id": uid, "deleted": True})
