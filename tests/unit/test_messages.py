"""Unit tests for coupon.domain.events: IssueEvent encoding and strict decoding."""

from __future__ import annotations

import uuid

import orjson
import pytest

from coupon.domain.events import (
    MAX_BATCH,
    SCHEMA_FIELDS,
    DecodedRecord,
    IssueEvent,
    UndecodableMessage,
    decode,
    decode_record,
    encode_batch,
)

COUPON_ID = str(uuid.UUID("11111111-2222-4333-8444-555555555555"))
USER_ID = str(uuid.UUID("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"))
EVENT_ID = "0f0e0d0c0b0a09080706050403020100"
_MISSING = object()  # marks a field to leave out of the record


def make_event(**changes: object) -> IssueEvent:
    fields: dict[str, object] = {
        "event_id": EVENT_ID,
        "coupon_id": COUPON_ID,
        "user_id": USER_ID,
        "rank": 7,
        "requested_at": "2026-11-27T09:00:00.000Z",
        "retry_of": None,
    }
    fields.update(changes)
    return IssueEvent(**fields)  # type: ignore[arg-type]


def raw(**changes: object) -> bytes:
    """A valid record value with some fields replaced (or removed when set to _MISSING)."""
    data = orjson.loads(make_event().to_bytes())
    for key, value in changes.items():
        if value is _MISSING:
            data.pop(key)
        else:
            data[key] = value
    return orjson.dumps(data)


@pytest.mark.parametrize("retry_of", [None, 0, 42])
@pytest.mark.parametrize("rank", [0, 1, 499, 2**40])
def test_round_trip_preserves_every_field(rank: int, retry_of: int | None) -> None:
    event = make_event(rank=rank, retry_of=retry_of)
    assert decode(event.to_bytes()) == event


def test_to_bytes_writes_the_documented_json_fields() -> None:
    event = make_event(retry_of=3)
    data = orjson.loads(event.to_bytes())
    assert data == {
        "event_id": event.event_id,
        "coupon_id": COUPON_ID,
        "user_id": USER_ID,
        "rank": 7,
        "requested_at": "2026-11-27T09:00:00.000Z",
        "retry_of": 3,
    }


def test_decode_accepts_a_record_without_retry_of() -> None:
    assert decode(raw(retry_of=_MISSING)).retry_of is None


def test_decode_normalises_uuids_to_canonical_form() -> None:
    event = decode(raw(coupon_id=COUPON_ID.upper(), user_id=uuid.UUID(USER_ID).hex))
    assert (event.coupon_id, event.user_id) == (COUPON_ID, USER_ID)


def test_decode_ignores_extra_fields() -> None:
    assert decode(raw(something_new="x")) == decode(raw())


def test_decode_rejects_none() -> None:
    with pytest.raises(UndecodableMessage, match="empty"):
        decode(None)


@pytest.mark.parametrize("value", [b"", b"not json", b"{", b'{"rank": 1,}', b"\xff\xfe"])
def test_decode_rejects_non_json(value: bytes) -> None:
    with pytest.raises(UndecodableMessage, match="not JSON"):
        decode(value)


@pytest.mark.parametrize("value", [b"[]", b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_decode_rejects_json_that_is_not_an_object(value: bytes) -> None:
    with pytest.raises(UndecodableMessage, match="not a JSON object"):
        decode(value)


@pytest.mark.parametrize("field", SCHEMA_FIELDS)
def test_decode_rejects_a_missing_field_and_names_it(field: str) -> None:
    with pytest.raises(UndecodableMessage, match=f"missing fields: {field}"):
        decode(raw(**{field: _MISSING}))


def test_decode_lists_every_missing_field() -> None:
    with pytest.raises(UndecodableMessage) as exc_info:
        decode(b"{}")
    for field in SCHEMA_FIELDS:
        assert field in str(exc_info.value)


@pytest.mark.parametrize("rank", [True, False, -1, "3", 1.0, 2.5, None, [1]])
def test_decode_rejects_a_bad_rank(rank: object) -> None:
    with pytest.raises(UndecodableMessage, match="rank"):
        decode(raw(rank=rank))


@pytest.mark.parametrize("field", ["coupon_id", "user_id"])
@pytest.mark.parametrize("value", ["not-a-uuid", "", "1234", "zzzzzzzz-bbbb-4ccc-8ddd-eeeeeeeeeeee"])
def test_decode_rejects_a_malformed_uuid(field: str, value: str) -> None:
    with pytest.raises(UndecodableMessage, match=f"{field} must be a UUID"):
        decode(raw(**{field: value}))


@pytest.mark.parametrize("field", ["coupon_id", "user_id"])
@pytest.mark.parametrize("value", [123, None, ["x"], {"id": "x"}])
def test_decode_rejects_a_non_string_uuid(field: str, value: object) -> None:
    with pytest.raises(UndecodableMessage, match=f"{field} must be a string"):
        decode(raw(**{field: value}))


@pytest.mark.parametrize("retry_of", [True, False, "5", 1.5, [5]])
def test_decode_rejects_a_bad_retry_of(retry_of: object) -> None:
    with pytest.raises(UndecodableMessage, match="retry_of"):
        decode(raw(retry_of=retry_of))


@pytest.mark.parametrize("field", ["event_id", "requested_at"])
@pytest.mark.parametrize("value", [1, None, ["x"]])
def test_decode_rejects_non_string_event_id_and_requested_at(field: str, value: object) -> None:
    with pytest.raises(UndecodableMessage, match="must be strings"):
        decode(raw(**{field: value}))


def test_undecodable_message_is_a_value_error() -> None:
    assert issubclass(UndecodableMessage, ValueError)


def _batch_events(count: int) -> list[IssueEvent]:
    return [
        IssueEvent(f"e{i}", "00000000-0000-4000-8000-000000000001", f"00000000-0000-4000-8000-00000000001{i}", i, "t")
        for i in range(count)
    ]


def test_batch_record_round_trip() -> None:
    events = _batch_events(3)
    assert decode_record(encode_batch(events)) == DecodedRecord(events, [], batch=True)
    assert decode_record(events[0].to_bytes()) == DecodedRecord([events[0]], [], batch=False)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"events": []}',
        b'{"events": {}}',
        b'{"events": "x"}',
        b'{"events": null}',
        b"{not json",
        b"[1]",
        b'{"coupon_id": "x"}',
    ],
)
def test_a_record_that_is_not_json_or_not_a_valid_envelope_is_undecodable_whole(raw: bytes) -> None:
    with pytest.raises(UndecodableMessage):
        decode_record(raw)


def test_a_batch_of_more_than_max_batch_events_is_undecodable_whole() -> None:
    raw = orjson.dumps({"events": [{}] * (MAX_BATCH + 1)})
    with pytest.raises(UndecodableMessage, match="1 to"):
        decode_record(raw)


def test_bad_events_of_a_batch_are_set_apart_one_by_one_with_their_json_and_index() -> None:
    good = _batch_events(3)
    items: list[object] = [
        good[0].as_dict(),
        {"event_id": "x"},
        good[1].as_dict(),
        42,
        dict(good[2].as_dict(), rank=-1),
    ]
    decoded = decode_record(orjson.dumps({"events": items}))
    assert decoded.events == [good[0], good[1]]
    assert [(b.index, orjson.loads(b.raw)) for b in decoded.bad] == [
        (1, {"event_id": "x"}),
        (3, 42),
        (4, dict(good[2].as_dict(), rank=-1)),
    ]
    assert "missing fields" in decoded.bad[0].reason
    assert decoded.bad[1].reason == "not a JSON object"
    assert "rank" in decoded.bad[2].reason
    assert decoded.batch


def test_a_batch_of_only_bad_events_has_no_events_and_every_one_set_apart() -> None:
    decoded = decode_record(b'{"events": [{"event_id": "x"}, "y"]}')
    assert decoded.events == []
    assert [b.index for b in decoded.bad] == [0, 1]


def test_a_bad_single_event_record_is_undecodable_whole() -> None:
    with pytest.raises(UndecodableMessage, match="missing fields"):
        decode_record(b'{"event_id": "x"}')
