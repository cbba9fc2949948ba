"""Coupons: administration (create, list, change, winners, change events), the issue request and its status, live
stock (SSE), usage and the user's wallet."""

from __future__ import annotations

from flask import Blueprint, Response, request

from coupon.domain.vocabulary import Role, iso, utcnow
from coupon.extensions import db
from coupon.http import issue_lane, sse
from coupon.http.admission import deferred_address, is_admin
from coupon.http.body import json_body
from coupon.http.envelope import success
from coupon.http.guards import admin_required, current_claims, current_user_id, user_required
from coupon.http.parsing import (
    parse_coupon_draft,
    parse_coupon_patch,
    parse_events_query,
    parse_ledger_query,
    parse_listing_query,
    parse_uuid,
)
from coupon.http.presenters import (
    coupon_json,
    coupon_page_json,
    events_page_json,
    ledger_page_json,
    owned_json,
)
from coupon.observability import request_ids
from coupon.resources import current
from coupon.services import catalog, issuing, ledger, lifecycle, stock_watch, usage

bp = Blueprint("coupons", __name__, url_prefix="/api/coupon")


@bp.post("")
@admin_required
def create() -> Response:
    draft = parse_coupon_draft(json_body(), utcnow())
    coupon = catalog.create_coupon(db.session, current().gate, draft, current_user_id())
    return success(coupon_json(coupon), 201)


@bp.get("")
@user_required
def listing() -> Response:
    query = parse_listing_query(request.args.to_dict())
    role = Role.ADMIN if is_admin(current_claims()) else Role.USER
    now = utcnow()
    page = catalog.list_coupons(db.session, current().recovery, query, role, now)
    return success(coupon_page_json(page, now))


@bp.patch("/<coupon_id>")
@admin_required
def update(coupon_id: str) -> Response:
    cid = parse_uuid(coupon_id)
    patch = parse_coupon_patch(json_body())
    changed = lifecycle.update_coupon(db.session, current().gate, cid, patch, current_user_id())
    return success(coupon_json(changed.coupon, changed.stock, utcnow()))


@bp.get("/<coupon_id>/issued")
@admin_required
def issued(coupon_id: str) -> Response:
    cid = parse_uuid(coupon_id)
    page = ledger.issued_page(db.session, cid, parse_ledger_query(request.args.to_dict()))
    return success(ledger_page_json(page))


@bp.get("/<coupon_id>/events")
@admin_required
def events(coupon_id: str) -> Response:
    cid = parse_uuid(coupon_id)
    page = ledger.events_page(db.session, cid, parse_events_query(request.args.to_dict()))
    return success(events_page_json(page))


@bp.get("/owned-coupons")
@user_required
def owned() -> Response:
    rows = usage.owned_coupons(db.session, current_user_id())
    return success([owned_json(r) for r in rows])


@bp.get("/<coupon_id>")
@user_required
def detail(coupon_id: str) -> Response:
    found = catalog.coupon_with_stock(db.session, current().recovery, parse_uuid(coupon_id), utcnow())
    return success(coupon_json(found.coupon, found.stock))


@bp.get("/<coupon_id>/stock/stream")
@user_required
def stock_stream(coupon_id: str) -> Response:
    """Server-Sent Events of the remaining stock; admitted (rate limit) once, at connect."""
    res = current()
    items = stock_watch.open_stream(
        db.session,
        res.recovery,
        res.stock_feed,
        parse_uuid(coupon_id),
        request.headers.get("Last-Event-ID"),
        res.stream_settings,
    )
    if request.method == "HEAD":
        return sse.stream_response(())  # the headers only: a HEAD must not hold its connection for a stream
    return sse.stream_response(items, request.environ.get("gunicorn.socket"))


@bp.post("/<coupon_id>/issue")
@user_required
def issue(coupon_id: str) -> Response:
    # Most issue requests are answered by coupon.http.issue_lane before Flask; this view takes the rest that get
    # this far (a non-canonical id), with the same function.
    data = issue_lane.accept_issue(
        current(),
        db.session,
        parse_uuid(coupon_id),
        current_claims(),
        address=deferred_address(),
        idempotency_key=request.headers.get("Idempotency-Key"),
        request_id=request_ids.current(),
    )
    return success(data, 202)


@bp.get("/<coupon_id>/issue")
@user_required
def issue_status(coupon_id: str) -> Response:
    cid, uid = parse_uuid(coupon_id), current_user_id()
    status = issuing.issue_status(db.session, current().gate, cid, uid)
    return success({"couponId": cid, "userId": uid, "status": status.value})


@bp.post("/<coupon_id>/usage")
@user_required
def use(coupon_id: str) -> Response:
    record = usage.use_coupon(db.session, parse_uuid(coupon_id), current_user_id(), utcnow())
    return success(
        {"couponId": record.coupon_id, "userId": record.user_id, "used": True, "usedAt": iso(record.used_at)}
    )
