"""Admin views: failure records of the issue pipeline."""

from __future__ import annotations

from flask import Blueprint, Response, request

from coupon.domain.vocabulary import iso
from coupon.extensions import db
from coupon.http.envelope import success
from coupon.http.guards import admin_required
from coupon.http.parsing import parse_failure_query
from coupon.services import failure_records

bp = Blueprint("admin", __name__, url_prefix="/api/admin")


@bp.get("/failures")
@admin_required
def failure_list() -> Response:
    status, limit = parse_failure_query(request.args.to_dict())
    view = failure_records.failure_view(db.session, status, limit)
    return success(
        {
            "counts": view.counts,
            "items": [
                {
                    "id": r.id,
                    "couponId": r.coupon_id,
                    "userId": r.user_id,
                    "status": r.status,
                    "retryCount": r.retry_count,
                    "resolved": bool(r.is_resolved),
                    "error": r.error[:500],
                    "createdAt": iso(r.created_at),
                    "lastRetriedAt": iso(r.last_retried_at),
                    "resolvedAt": iso(r.resolved_at),
                }
                for r in view.items
            ],
        }
    )
