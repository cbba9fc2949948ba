"""Unit tests for request ids (coupon.observability.request_ids), JSON log lines and redaction
(coupon.observability.log_format)."""

from __future__ import annotations

import logging

import orjson
import pytest

from coupon.domain.events import decode_record, encode_batch
from coupon.observability import request_ids
from coupon.observability.log_format import REQUEST_ID, JsonFormatter, redact
from tests.unit.test_messages import make_event, raw


@pytest.mark.parametrize("value", ["abc", "A-1_b.c:d", "x" * 64, "0123456789abcdef"])
def test_safe_ids_are_kept(value: str) -> None:
    assert request_ids.accept(value) == value


@pytest.mark.parametrize("value", [None, "", "x" * 65, "has space", 'quote"', "new\nline", "é", "a/b", 42, "<script>"])
def test_unsafe_ids_are_refused(value: object) -> None:
    assert request_ids.accept(value) is None


def test_new_ids_are_short_unique_and_acceptable() -> None:
    ids = {request_ids.new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 16 and request_ids.accept(i) == i for i in ids)


def test_events_carry_the_request_id_and_old_records_still_decode() -> None:
    event = make_event(request_id="req-42")
    assert orjson.loads(event.to_bytes())["request_id"] == "req-42"
    assert decode_record(event.to_bytes()).events[0].request_id == "req-42"
    assert (
        decode_record(encode_batch([event, make_event(user_id="aaaaaaaa-bbbb-4ccc-8ddd-ffffffffffff")]))
        .events[0]
        .request_id
        == "req-42"
    )
    assert "request_id" not in orjson.loads(make_event().to_bytes())  # no id, no field: records stay as before
    assert decode_record(raw()).events[0].request_id is None
    # An unsafe id is dropped; the request it belongs to is still processed.
    assert decode_record(raw(request_id="bad id\n")).events[0].request_id is None
    assert decode_record(raw(request_id=7)).events[0].request_id is None


def _format(msg: str, *args: object, **extra: object) -> dict:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return orjson.loads(JsonFormatter("test").format(record))


def test_a_log_line_is_json_with_the_bound_request_id_and_extra_fields() -> None:
    token = REQUEST_ID.set("rid-1")
    try:
        line = _format("hello %s", "world", coupon_id="c1")
    finally:
        REQUEST_ID.reset(token)
    assert line["msg"] == "hello world" and line["request_id"] == "rid-1" and line["coupon_id"] == "c1"
    assert line["level"] == "INFO" and line["proc"] == "test" and line["ts"].endswith("Z")
    assert "request_id" not in _format("outside a request")
    assert _format("x", request_id="from-extra")["request_id"] == "from-extra"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abc.def.ghi", "abc.def.ghi"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl in a message", "eyJhbGciOiJIUzI1NiJ9"),
        ("cannot connect to mysql+pymysql://coupon:s3cret@db:3306/coupon", "s3cret"),
        ("password=hunter2 user=bob", "hunter2"),
        ('{"password": "hunter2"}', "hunter2"),
        ("JWT_SECRET_KEY: abcdefg", "abcdefg"),
    ],
)
def test_secrets_never_reach_a_line(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert secret not in orjson.dumps(_format(text)).decode()
    assert secret not in orjson.dumps(_format("x", detail=text)).decode()
