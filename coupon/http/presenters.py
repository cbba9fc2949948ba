"""Shapes domain objects into the API's camelCase replies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from coupon.adapters.issued_repo import LedgerRow
from coupon.domain.models import Coupon
from coupon.domain.vocabulary import iso, phase_of
from coupon.http.cursors import encode_coupon_cursor, encode_event_cursor, encode_rank_cursor
from coupon.services.catalog import CouponPage, Stock
from coupon.services.ledger import EventsPage, LedgerPage


def coupon_json(coupon: Coupon, stock: Stock | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The coupon; with `stock` its live stock, with `now` its phase (live, upcoming or ended) at that moment."""
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
    if now is not None:
        body["phase"] = phase_of(coupon.issue_starts_at, coupon.expires_at, now).value
    return body


def coupon_page_json(page: CouponPage, now: datetime) -> dict[str, Any]:
    return {
        "items": [coupon_json(item.coupon, item.stock, now) for item in page.items],
        "nextCursor": encode_coupon_cursor(page.next) if page.next is not None else None,
    }


def ledger_row_json(row: LedgerRow) -> dict[str, Any]:
    return {
        "userId": row.user_id,
        "username": row.username,
        "rank": row.rank,
        "issuedAt": iso(row.issued_at),
        "used": bool(row.used),
        "usedAt": iso(row.used_at),
    }


def ledger_page_json(page: LedgerPage) -> dict[str, Any]:
    return {
        "items": [ledger_row_json(row) for row in page.rows],
        "nextCursor": encode_rank_cursor(page.next) if page.next is not None else None,
    }


def events_page_json(page: EventsPage) -> dict[str, Any]:
    return {
        "items": [
            {
                "id": entry.event.id,
                "couponId": entry.event.coupon_id,
                "actor": entry.event.actor,
                "actorName": entry.actor_name,
                "at": iso(entry.event.at),
                "action": entry.event.action.value,
                "changes": entry.event.changes,
            }
            for entry in page.entries
        ],
        "nextCursor": encode_event_cursor(page.next_before_id) if page.next_before_id is not None else None,
    }


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


# `flask export-issued`: the ledger's fields, one CSV row per winner (empty cells for null).
LEDGER_CSV_HEADER = ("userId", "username", "rank", "issuedAt", "used", "usedAt")


def ledger_csv_row(row: LedgerRow) -> list[str]:
    shaped = ledger_row_json(row)
    cells = []
    for name in LEDGER_CSV_HEADER:
        value = shaped[name]
        cells.append("" if value is None else ("true" if value is True else "false" if value is False else str(value)))
    return cells
