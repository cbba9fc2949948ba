"""Shapes domain objects into the API's camelCase replies."""

from __future__ import annotations

from typing import Any

from coupon.domain.models import Coupon
from coupon.domain.vocabulary import iso
from coupon.services.catalog import Stock


def coupon_json(coupon: Coupon, stock: Stock | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": coupon.id,
        "name": coupon.name,
        "type": coupon.type.value,
        "discountType": coupon.discount_type.value,
        "discountValue": coupon.discount_value,
        "totalQuantity": coupon.total_quantity,
        "issueStartsAt": iso(coupon.issue_starts_at),
        "expiresAt": iso(coupon.expires_at),
        "status": coupon.status.value,
        "createdAt": iso(coupon.created_at),
    }
    if stock is not None:
        body["stock"] = {
            "total": stock.total,
            "reserved": stock.reserved,
            "issued": stock.issued,
            "remaining": stock.remaining,
        }
    return body


def owned_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "couponId": row["id"],
        "name": row["name"],
        "type": row["type"],
        "discountType": row["discount_type"],
        "discountValue": row["discount_value"],
        "issuedAt": iso(row["issued_at"]),
        "used": bool(row["used"]),
        "usedAt": iso(row["used_at"]),
        "expiresAt": iso(row["expires_at"]),
        "rank": row["rank"],
    }
