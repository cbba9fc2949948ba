"""The coupon.issue message: accepted requests as JSON. Pure encode/decode, no I/O.

A record holds either one event (an object with the event's fields) or a batch of events that one API
worker had accepted at the same moment: {"events": [event, ...]}.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import orjson

from coupon.domain.identifiers import CANONICAL_UUID
from coupon.observability.request_ids import accept as accept_request_id

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
    # The HTTP request's X-Request-Id; optional, so records written before it existed still decode.
    request_id: str | None = None

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {
            "event_id": self.event_id,
            "coupon_id": self.coupon_id,
            "user_id": self.user_id,
            "rank": self.rank,
            "requested_at": self.requested_at,
            "retry_of": self.retry_of,
        }
        if self.request_id is not None:
            data["request_id"] = self.request_id
        return data

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.as_dict())


MAX_BATCH = 10_000


def encode_batch(events: list[IssueEvent]) -> bytes:
    return orjson.dumps({"events": [e.as_dict() for e in events]})


# What the API writes; anything else is parsed (and normalised) the slow way.


def _uuid(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise UndecodableMessage(f"{field} must be a string")
    if CANONICAL_UUID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise UndecodableMessage(f"{field} must be a UUID") from None


def _load(raw: bytes | None) -> object:
    if raw is None:
        raise UndecodableMessage("empty record")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UndecodableMessage(f"not JSON: {exc}") from None


def decode(raw: bytes | None) -> IssueEvent:
    """Parse and check a single-event record; any deviation from the schema is UndecodableMessage."""
    return _event(_load(raw))


@dataclass(frozen=True)
class BadEvent:
    """One event of a batch record that can never be processed: parked on its own, its neighbours go on."""

    index: int
    raw: bytes
    reason: str


@dataclass(frozen=True)
class DecodedRecord:
    events: list[IssueEvent]
    bad: list[BadEvent]
    batch: bool


def decode_record(raw: bytes | None) -> DecodedRecord:
    """A record's events: one, or a batch. A batch's bad events are set apart one by one (with their JSON and
    index); a record that is not JSON, not a valid envelope, or a single bad event is UndecodableMessage."""
    data = _load(raw)
    if isinstance(data, dict) and "events" in data:
        items = data["events"]
        if not isinstance(items, list) or not items or len(items) > MAX_BATCH:
            raise UndecodableMessage(f"events must be a list of 1 to {MAX_BATCH} events")
        events: list[IssueEvent] = []
        bad: list[BadEvent] = []
        for index, item in enumerate(items):
            try:
                events.append(_event(item))
            except UndecodableMessage as exc:
                bad.append(BadEvent(index, orjson.dumps(item), str(exc)))
        return DecodedRecord(events, bad, batch=True)
    return DecodedRecord([_event(data)], [], batch=False)


def _event(data: object) -> IssueEvent:
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
        # A missing or unsafe id is dropped, never a reason to reject the request it belongs to.
        request_id=accept_request_id(data.get("request_id")),
    )
