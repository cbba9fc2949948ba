"""Unit tests for live stock: states and their event ids (coupon.domain.live_stock), the SSE frames
(coupon.http.sse), the per-process feed with a fake reader (coupon.adapters.stock_feed) and one stream's items
(coupon.services.stock_watch). No I/O: gevent greenlets and a reader function stand in for Redis."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import gevent
import pytest
from flask import Flask, request

from coupon.adapters.stock_feed import StockFeed
from coupon.domain.live_stock import (
    GateReading,
    StockPosition,
    StockState,
    StockStatus,
    needs_sending,
    parse_event_id,
    stock_state,
)
from coupon.http import sse
from coupon.services.stock_watch import HEARTBEAT, Retry, StreamItem, StreamSettings, stream

CID = "0f9995ef-0000-4000-8000-000000000001"
NOW = 1_800_000_000_000


def reading(
    reserved: int = 0, total: int = 10, starts: int = NOW - 1000, ends: int = NOW + 1000, status: str = "ACTIVE"
):
    return GateReading(reserved, total, starts, ends, status)


# --- states and ids -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gate", "status"),
    [
        (reading(3), StockStatus.ACTIVE),
        (reading(10), StockStatus.SOLD_OUT),
        (reading(0, starts=NOW + 1), StockStatus.NOT_STARTED),
        (reading(0, ends=NOW), StockStatus.ENDED),  # the window is [starts, ends)
        (reading(3, status="DISABLED"), StockStatus.DISABLED),
        # reserve.lua's order: a closed window or a disabled coupon wins over the stock
        (reading(10, status="DISABLED"), StockStatus.DISABLED),
        (reading(10, ends=NOW - 1), StockStatus.ENDED),
    ],
)
def test_a_reading_is_judged_like_the_gate_judges_a_request(gate: GateReading, status: StockStatus) -> None:
    assert stock_state(CID, gate, NOW).status is status


def test_remaining_is_never_negative_and_the_json_has_the_documented_fields() -> None:
    state = StockState(CID, 5, 7, StockStatus.SOLD_OUT)
    assert state.remaining == 0
    assert state.as_json() == {"couponId": CID, "total": 5, "reserved": 7, "remaining": 0, "status": "SOLD_OUT"}


@pytest.mark.parametrize(
    ("status", "event", "final"),
    [
        (StockStatus.NOT_STARTED, "stock", False),
        (StockStatus.ACTIVE, "stock", False),
        (StockStatus.SOLD_OUT, "sold-out", True),
        (StockStatus.ENDED, "closed", True),
        (StockStatus.DISABLED, "closed", True),
    ],
)
def test_event_names_and_final_states(status: StockStatus, event: str, final: bool) -> None:
    state = StockState(CID, 10, 10 if status is StockStatus.SOLD_OUT else 4, status)
    assert (state.event_name, state.final) == (event, final)


def test_an_event_id_names_the_state_and_parses_back() -> None:
    state = StockState(CID, 500, 137, StockStatus.ACTIVE)
    assert state.event_id == "1.137.500.A"
    assert parse_event_id(state.event_id) == state.position == StockPosition(1, 137, 500, StockStatus.ACTIVE)
    assert parse_event_id(" 2.500.500.S ") == StockPosition(2, 500, 500, StockStatus.SOLD_OUT)
    for status in StockStatus:
        other = StockState(CID, 9, 9, status)
        assert parse_event_id(other.event_id) == other.position


def test_ids_order_the_states_of_a_sale() -> None:
    life = [
        StockState(CID, 3, 0, StockStatus.NOT_STARTED),
        StockState(CID, 3, 0, StockStatus.ACTIVE),
        StockState(CID, 3, 1, StockStatus.ACTIVE),
        StockState(CID, 3, 2, StockStatus.ACTIVE),
        StockState(CID, 3, 3, StockStatus.SOLD_OUT),
    ]
    positions = [parse_event_id(s.event_id) for s in life]
    assert positions == sorted(positions)  # type: ignore[type-var]
    assert len(set(positions)) == len(positions)


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "garbage",
        "1.2.3",
        "1.2.3.A.4",
        "1.x.3.A",
        "1.2.3.Z",
        "3.1.1.A",
        "0.1.3.A",
        "2.1.3.A",
        "1.².3.A",
        "1.-1.3.A",
        "1." + "9" * 13 + ".3.A",
        "1.2.3.a",
    ],
)
def test_malformed_last_event_ids_are_ignored(raw: str | None) -> None:
    assert parse_event_id(raw) is None


def test_what_a_resuming_subscriber_is_sent() -> None:
    active = StockState(CID, 10, 4, StockStatus.ACTIVE)
    sold = StockState(CID, 10, 10, StockStatus.SOLD_OUT)
    assert needs_sending(None, active)  # a fresh client: the current state
    assert not needs_sending(active.position, active)  # unchanged since its last id: nothing
    assert needs_sending(StockState(CID, 10, 3, StockStatus.ACTIVE).position, active)  # changed
    assert needs_sending(StockState(CID, 10, 5, StockStatus.ACTIVE).position, active)  # changed back (a release)
    assert needs_sending(active.position, sold)
    assert needs_sending(sold.position, sold)  # the final event again
    assert needs_sending(sold.position, active)  # a unit came back after the sold-out


# --- SSE frames -----------------------------------------------------------------------------------------------------


def test_frames_on_the_wire() -> None:
    assert sse.frame(Retry(2000)) == b"retry: 2000\n\n"
    assert sse.frame(HEARTBEAT) == b": keep-alive\n\n"
    state = StockState(CID, 500, 137, StockStatus.ACTIVE)
    assert sse.frame(state) == (
        b"id: 1.137.500.A\nevent: stock\ndata: "
        b'{"couponId":"' + CID.encode() + b'","total":500,"reserved":137,"remaining":363,"status":"ACTIVE"}\n\n'
    )


def test_the_final_frame_asks_for_a_long_reconnection_delay() -> None:
    sold = sse.frame(StockState(CID, 5, 5, StockStatus.SOLD_OUT))
    assert sold.startswith(b"retry: 60000\nid: 2.5.5.S\nevent: sold-out\ndata: {")
    closed = sse.frame(StockState(CID, 5, 1, StockStatus.DISABLED))
    assert b"\nevent: closed\n" in closed and b'"status":"DISABLED"' in closed
    assert sold.count(b"\n\n") == 1 and sold.endswith(b"\n\n")


def test_a_state_is_encoded_once_for_all_its_subscribers() -> None:
    first = sse.frame(StockState(CID, 5, 2, StockStatus.ACTIVE))
    assert sse.frame(StockState(CID, 5, 2, StockStatus.ACTIVE)) is first


def test_anything_else_is_not_a_frame() -> None:
    with pytest.raises(TypeError):
        sse.frame("stock")  # type: ignore[arg-type]


class RecordingSocket:
    def __init__(self) -> None:
        self.timeouts: list[float | None] = []

    def settimeout(self, value: float | None) -> None:
        self.timeouts.append(value)


def test_the_server_closing_the_body_ends_the_stream_at_once_and_restores_the_socket() -> None:
    ended: list[str] = []

    def items() -> Iterator[StreamItem]:
        try:
            yield Retry(2000)
            yield HEARTBEAT
        finally:
            ended.append("left the feed")

    sock = RecordingSocket()
    with Flask(__name__).test_request_context("/api/coupon/x/stock/stream"):
        body, status, _ = sse.stream_response(items(), sock).get_wsgi_response(request.environ)
    assert status == "200 OK" and next(iter(body)) == b"retry: 2000\n\n"
    assert sock.timeouts == [sse.WRITE_TIMEOUT_S] and not ended
    body.close()  # type: ignore[attr-defined]  # what a WSGI server does when the client is gone (PEP 3333)
    assert ended == ["left the feed"], "the stream stays subscribed until its generator is garbage collected"
    assert sock.timeouts == [sse.WRITE_TIMEOUT_S, None]


# --- the feed, with a fake reader -----------------------------------------------------------------------------------


class FakeGate:
    """The reader: counts its calls, returns the configured reading or raises the configured error."""

    def __init__(self) -> None:
        self.calls = 0
        self.reading: GateReading | None = reading(0)
        self.error: Exception | None = None

    def __call__(self, coupon_id: str) -> GateReading | None:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.reading


def _feed(gate: FakeGate, tick_s: float = 0.02) -> StockFeed:
    return StockFeed(gate, tick_s, clock_ms=lambda: NOW, pulse_s=0.02)


def _until(condition, timeout: float = 2.0) -> None:
    with gevent.Timeout(timeout):
        while not condition():
            gevent.sleep(0.005)


def test_one_read_per_tick_serves_every_subscriber() -> None:
    gate = FakeGate()
    feed = _feed(gate)
    subs = [feed.subscribe(CID) for _ in range(200)]
    _until(lambda: subs[0].current()[1] is not None)
    calls = gate.calls
    gevent.sleep(0.2)  # about 10 ticks
    reads = gate.calls - calls
    assert 5 <= reads <= 12, reads  # per tick, not per subscriber (that would be 2,000)
    assert feed.channels() == 1
    assert {s.current() for s in subs} == {(1, StockState(CID, 10, 0, StockStatus.ACTIVE))}
    for s in subs:
        s.close()


def test_the_channel_starts_with_the_first_subscriber_and_stops_with_the_last() -> None:
    gate = FakeGate()
    feed = _feed(gate)
    assert feed.channels() == 0 and feed.latest(CID) is None
    first, second = feed.subscribe(CID), feed.subscribe(CID)
    _until(lambda: feed.latest(CID) is not None)
    first.close()
    first.close()  # twice is harmless
    gevent.sleep(0.05)
    assert feed.channels() == 1
    second.close()
    _until(lambda: feed.channels() == 0, 0.5)
    calls = gate.calls
    gevent.sleep(0.1)
    assert gate.calls == calls, "the reader still ran with nobody subscribed"
    with feed.subscribe(CID) as again:  # a new subscriber starts a new channel
        _until(lambda: again.current()[1] is not None)
    _until(lambda: feed.channels() == 0, 0.5)


def test_only_changes_are_published_and_a_slow_subscriber_gets_the_latest() -> None:
    gate = FakeGate()
    feed = _feed(gate, tick_s=0.01)
    with feed.subscribe(CID) as sub:
        _until(lambda: sub.current()[0] == 1)
        gevent.sleep(0.1)
        assert sub.current()[0] == 1, "an unchanged reading was published again"
        for reserved in range(1, 8):  # seven changes while this subscriber reads nothing
            gate.reading = reading(reserved)
            _until(lambda r=reserved: feed.latest(CID) == StockState(CID, 10, r, StockStatus.ACTIVE))
        version, state = sub.current()
        assert version == 8 and state == StockState(CID, 10, 7, StockStatus.ACTIVE)


def test_a_failing_read_skips_the_tick_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    gate = FakeGate()
    feed = _feed(gate)
    with caplog.at_level(logging.WARNING, logger="coupon.adapters.stock_feed"), feed.subscribe(CID) as sub:
        _until(lambda: sub.current()[0] == 1)
        gate.error = ConnectionError("Redis is down")
        calls = gate.calls
        _until(lambda: gate.calls >= calls + 5)
        assert sub.current()[0] == 1 and not sub.closed
        assert feed.vouches_for(CID), "an error says nothing about the gate"
        gate.error, gate.reading = None, None  # answers again, but without meta: skipped as well
        _until(lambda: gate.calls >= calls + 8)
        assert not feed.vouches_for(CID), "a gate without meta: the next stream checks the coupon again"
        gate.reading = reading(4)
        _until(lambda: sub.current()[0] == 2)
        assert feed.vouches_for(CID)
        assert sub.current()[1] == StockState(CID, 10, 4, StockStatus.ACTIVE)
    lines = [r.getMessage() for r in caplog.records if "live stock" in r.getMessage()]
    assert len(lines) == 1 and "ConnectionError: Redis is down" in lines[0], lines


def test_wait_returns_on_a_new_state_on_a_pulse_or_on_close() -> None:
    gate = FakeGate()
    feed = StockFeed(gate, 0.01, clock_ms=lambda: NOW, pulse_s=0.1)
    sub = feed.subscribe(CID)
    _until(lambda: sub.current()[0] == 1)
    with gevent.Timeout(0.01):
        sub.wait(0)  # already newer: at once
    started = time.monotonic()
    with gevent.Timeout(1.0):
        sub.wait(1)  # nothing new: the next pulse
    assert 0.05 <= time.monotonic() - started <= 0.5 and sub.current()[0] == 1
    gevent.spawn_later(0.02, setattr, gate, "reading", reading(1))
    with gevent.Timeout(1.0):
        while sub.current()[0] == 1:
            sub.wait(1)
    assert sub.current()[1] == StockState(CID, 10, 1, StockStatus.ACTIVE)
    gevent.spawn_later(0.02, feed.close)
    with gevent.Timeout(1.0):
        while not sub.closed:
            sub.wait(2)
    sub.close()
    assert feed.channels() == 0


def test_a_channel_whose_greenlet_ended_ends_its_streams() -> None:
    gate = FakeGate()
    feed = _feed(gate)
    sub = feed.subscribe(CID)
    _until(lambda: sub.current()[0] == 1)
    assert not sub.closed
    channel_greenlet = feed._channels[CID].greenlet
    assert channel_greenlet is not None
    channel_greenlet.kill()  # cannot happen short of a bug; its streams must not wait forever
    with gevent.Timeout(1.0):
        sub.wait(1)
    assert sub.closed
    sub.close()
    assert feed.channels() == 0


# --- one stream's items ---------------------------------------------------------------------------------------------


SETTINGS = StreamSettings(heartbeat_s=0.05, max_duration_s=10.0, retry_ms=1500)


def _take(items: Iterator[StreamItem], n: int, timeout: float = 2.0) -> list[StreamItem]:
    with gevent.Timeout(timeout):
        return [next(items) for _ in range(n)]


def test_a_stream_sends_retry_then_changes_then_the_final_state_and_ends() -> None:
    gate = FakeGate()
    feed = _feed(gate, tick_s=0.01)
    items = stream(feed, CID, None, SETTINGS)
    assert _take(items, 2) == [Retry(1500), StockState(CID, 10, 0, StockStatus.ACTIVE)]
    gate.reading = reading(6)
    assert _take(items, 1) == [StockState(CID, 10, 6, StockStatus.ACTIVE)]
    gate.reading = reading(10)
    assert _take(items, 1) == [StockState(CID, 10, 10, StockStatus.SOLD_OUT)]
    with gevent.Timeout(1.0), pytest.raises(StopIteration):
        next(items)
    _until(lambda: feed.channels() == 0)


def test_a_resumed_stream_skips_the_unchanged_state_and_heartbeats() -> None:
    gate = FakeGate()
    feed = _feed(gate, tick_s=0.01)
    last = StockState(CID, 10, 0, StockStatus.ACTIVE).position
    items = stream(feed, CID, last, SETTINGS)
    assert _take(items, 3) == [Retry(1500), HEARTBEAT, HEARTBEAT]
    gate.reading = reading(2)
    assert StockState(CID, 10, 2, StockStatus.ACTIVE) in _take(items, 2)
    items.close()  # the client went away: its subscription ends with it
    _until(lambda: feed.channels() == 0)


def test_a_client_whose_last_id_was_final_gets_the_final_event_again() -> None:
    gate = FakeGate()
    gate.reading = reading(10)
    feed = _feed(gate, tick_s=0.01)
    sold = StockState(CID, 10, 10, StockStatus.SOLD_OUT)
    assert list(stream(feed, CID, sold.position, SETTINGS)) == [Retry(1500), sold]


def test_a_stream_ends_after_its_maximum_duration() -> None:
    gate = FakeGate()
    feed = _feed(gate, tick_s=0.01)
    short = StreamSettings(heartbeat_s=10.0, max_duration_s=0.2, retry_ms=0)
    with gevent.Timeout(1.0):
        items = list(stream(feed, CID, None, short))
    assert items == [Retry(0), StockState(CID, 10, 0, StockStatus.ACTIVE)]


def test_every_stream_ends_when_the_feed_closes() -> None:
    gate = FakeGate()
    feed = _feed(gate, tick_s=0.01)
    streams = [stream(feed, CID, None, StreamSettings(10.0, 60.0, 0)) for _ in range(3)]
    done: list[list[StreamItem]] = []
    workers = [gevent.spawn(lambda s=s: done.append(list(s))) for s in streams]
    _until(lambda: feed.latest(CID) is not None)
    feed.close()
    gevent.joinall(workers, timeout=1.0)
    assert len(done) == 3 and all(items[0] == Retry(0) for items in done)
    _until(lambda: feed.channels() == 0)
