"""The coupon.issue message: one accepted request, as JSON. Pure encode/decode, no I/O."""
from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

SCHEMA_FIELDS = ("event_id", "coupon_id", "user_id", "rank", "requested_at")


class UndecodableMessage(ValueError):
    """The record can never be processed: it goes to the DLQ."""


@dataclass(frozen=True)
class IssueEvent:
    event_id: str
    coupon_id: str
    user_id: str
    rank: int
    requested_at: str
    retry_of: int | None = None

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "event_id": self.event_id,
                "coupon_id": self.coupon_id,
                "user_id": self.user_id,
                "rank": self.rank,
                "requested_at": self.requested_at,
                "retry_of": self.retry_of,
            }
        )


def _uuid(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise UndecodableMessage(f"{field} must be a string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UndecodableMessage(f"{field} must be a UUID") from None


def decode(raw: bytes | None) -> IssueEvent:
    """Parse and check a record value; any deviation from the schema is UndecodableMessage."""
    if raw is None:
        raise UndecodableMessage("empty record")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UndecodableMessage(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UndecodableMessage("not a JSON object")
    missing = [f for f in SCHEMA_FIELDS if f not in data]
    if missing:
        raise UndecodableMessage(f"missing fields: {', '.join(missing)}")
    rank = data["rank"]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise UndecodableMessage("rank must be a non-negative integer")
    retry_of = data.get("retry_of")
    if retry_of is not None and (isinstance(retry_of, bool) or not isinstance(retry_of, int)):
        raise UndecodableMessage("retry_of must be an integer or null")
    if not isinstance(data["event_id"], str) or not isinstance(data["requested_at"], str):
        raise UndecodableMessage("event_id and requested_at must be strings")
    return IssueEvent(
        event_id=data["event_id"],
        coupon_id=_uuid(data["coupon_id"], "coupon_id"),
        user_id=_uuid(data["user_id"], "user_id"),
        rank=rank,
        requested_at=data["requested_at"],
        retry_of=retry_of,
    )
