"""The opaque page cursors of the admin lists: base64url (unpadded) of a small JSON array, tagged with its list.

A client only hands back the `nextCursor` it was given. The tag keeps a cursor of one list from being accepted by
another; anything that does not decode to exactly the expected shape is refused (ValueError), never guessed at.

    coupons  ["c", "<created_at, ISO-8601 with microseconds>", "<coupon id>"]
    issued   ["i", <rank>, <row id>]
    events   ["e", <event id>]
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any

import orjson

from coupon.domain.commands import CouponPosition, RankPosition
from coupon.domain.identifiers import CANONICAL_UUID

MAX_CURSOR_LENGTH = 200
CURSOR_ALPHABET = r"[A-Za-z0-9_-]+"  # base64url, unpadded
_ALPHABET = re.compile(CURSOR_ALPHABET)
_MAX_INT = 2**63 - 1


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode()


def _decode(text: str, tag: str, width: int) -> list[Any]:
    if not (0 < len(text) <= MAX_CURSOR_LENGTH) or not _ALPHABET.fullmatch(text):
        raise ValueError("not a cursor")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise ValueError("not a cursor") from None
    if not isinstance(values, list) or len(values) != width or values[0] != tag:
        raise ValueError("not a cursor of this list")
    # The canonical form only: one cursor, one text (no re-encodings of the same position).
    if _encode(values) != text:
        raise ValueError("not a canonical cursor")
    return values[1:]


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not (0 <= value <= _MAX_INT):
        raise ValueError("not a cursor")
    return value


def encode_coupon_cursor(position: CouponPosition) -> str:
    return _encode(["c", position.created_at.isoformat(timespec="microseconds"), position.id])


def decode_coupon_cursor(text: str) -> CouponPosition:
    created, coupon_id = _decode(text, "c", 3)
    if not isinstance(created, str) or not isinstance(coupon_id, str) or not CANONICAL_UUID.fullmatch(coupon_id):
        raise ValueError("not a cursor")
    try:
        at = datetime.fromisoformat(created)
    except ValueError:
        raise ValueError("not a cursor") from None
    if at.tzinfo is not None:
        raise ValueError("not a cursor")
    return CouponPosition(at, coupon_id)


def encode_rank_cursor(position: RankPosition) -> str:
    return _encode(["i", position.rank, position.row_id])


def decode_rank_cursor(text: str) -> RankPosition:
    rank, row_id = _decode(text, "i", 3)
    return RankPosition(_count(rank), _count(row_id))


def encode_event_cursor(before_id: int) -> str:
    return _encode(["e", before_id])


def decode_event_cursor(text: str) -> int:
    [before_id] = _decode(text, "e", 2)
    return _count(before_id)
