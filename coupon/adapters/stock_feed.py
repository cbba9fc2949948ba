"""The per-process live-stock hub behind the SSE streams: one read of a coupon's gate per tick, fanned out.

Every coupon with at least one subscriber in this process has one greenlet (its channel). Once per tick it reads the
gate in ONE pipeline (GET the reservation counter, HMGET the meta; all keys of a coupon share the hash tag {id}, so
on Redis Cluster the pipeline goes to one node) and, when the state changed, publishes it: the channel keeps only the
latest state and a version number, and wakes every waiting subscriber at once. A subscriber reads the latest state
when it is ready for it, so a slow client skips states instead of queueing them; nothing grows with its backlog.
The greenlet starts with the first subscriber and stops when the last one leaves. While nothing changes it still
wakes its subscribers every `pulse_s` (a pulse), so they can keep their heartbeats and deadlines without a timer of
their own: one timer per coupon, not one per stream wait (a timer per wait cost a third of an event's CPU).

A failed read (Redis down, a timeout, a gate without meta) skips that tick: subscribers keep their last state and
their heartbeats, and the failure is logged at most once per coupon per `error_log_every_s`. close() (worker
shutdown) wakes every subscriber and tells it to end.

Runs under gevent (the API's workers); the reader is injectable, so tests drive it without Redis.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType

import gevent
from gevent.event import Event

from coupon.adapters import keys
from coupon.adapters.redis_client import RedisClient
from coupon.domain.live_stock import GateReading, StockState, stock_state
from coupon.observability.instruments import STOCK_FEED_READS, STOCK_STREAMS

log = logging.getLogger(__name__)

Reader = Callable[[str], GateReading | None]

_READ_OK = STOCK_FEED_READS.labels(result="ok")
_READ_MISSING = STOCK_FEED_READS.labels(result="missing")
_READ_ERROR = STOCK_FEED_READS.labels(result="error")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def read_gate(client: RedisClient, coupon_id: str) -> GateReading | None:
    """The coupon's counter and meta in one round trip (one node on a cluster); None when the gate has no meta."""
    pipe = client.pipeline(transaction=False)
    pipe.get(keys.issued(coupon_id))
    pipe.hmget(keys.meta(coupon_id), ["total", "starts", "ends", "status"])
    issued, meta = pipe.execute()
    if meta[0] is None or meta[1] is None or meta[2] is None or meta[3] is None:
        return None
    return GateReading(int(issued or 0), int(meta[0]), int(meta[1]), int(meta[2]), _text(meta[3]))


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Channel:
    """One coupon's latest state, its subscribers and its ticking greenlet."""

    __slots__ = (
        "changed",
        "coupon_id",
        "gate_found",
        "greenlet",
        "last_failure_log",
        "state",
        "subscribers",
        "unlogged_failures",
        "version",
        "wake",
    )

    def __init__(self, coupon_id: str) -> None:
        self.coupon_id = coupon_id
        self.subscribers = 0
        self.state: StockState | None = None
        self.version = 0
        self.changed = Event()  # replaced on each publish or pulse; the old one is set, waking its waiters
        self.wake = Event()  # cuts the greenlet's wait short (last subscriber left, feed closed)
        self.greenlet: gevent.Greenlet[[_Channel], None] | None = None
        self.gate_found = False  # the last answered read found the gate's meta
        self.last_failure_log = -float("inf")
        self.unlogged_failures = 0

    def publish(self, state: StockState) -> None:
        self.state = state
        self.version += 1
        self.pulse()

    def pulse(self) -> None:
        done, self.changed = self.changed, Event()
        done.set()


class Subscription:
    """One subscriber's view of a channel: the latest state with its version, and a wait for a newer one."""

    def __init__(self, feed: StockFeed, channel: _Channel) -> None:
        self._feed = feed
        self._channel = channel
        self._open = True

    @property
    def closed(self) -> bool:
        """The feed is shutting down, this subscription was closed, or its channel's greenlet ended (it never should
        while it has subscribers): the stream should end, and its client reconnects."""
        greenlet = self._channel.greenlet
        return self._feed.closed or not self._open or (greenlet is not None and greenlet.dead)

    def current(self) -> tuple[int, StockState | None]:
        """(version, state) of the latest published state; version 0 and None before the first good read."""
        return self._channel.version, self._channel.state

    def wait(self, after_version: int) -> None:
        """Wait (cooperatively) for a state newer than `after_version`, the channel's next pulse (at most `pulse_s`
        away while its greenlet runs) or the end; returns at once if one of them is already there."""
        if self._channel.version > after_version or self.closed:
            return
        self._channel.changed.wait()

    def close(self) -> None:
        if self._open:
            self._open = False
            self._feed._leave(self._channel)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class StockFeed:
    """One per process, shared by its greenlets (gevent only: the channels are greenlets)."""

    def __init__(
        self,
        reader: Reader,
        tick_s: float,
        clock_ms: Callable[[], int] = _now_ms,
        error_log_every_s: float = 30.0,
        pulse_s: float = 1.0,
    ) -> None:
        self._read = reader
        self.tick_s = tick_s
        self.pulse_s = pulse_s
        self._clock_ms = clock_ms
        self.error_log_every_s = error_log_every_s
        self._channels: dict[str, _Channel] = {}
        self._closed = False

    @classmethod
    def for_redis(cls, client: RedisClient, tick_s: float, pulse_s: float = 1.0) -> StockFeed:
        return cls(lambda coupon_id: read_gate(client, coupon_id), tick_s, pulse_s=pulse_s)

    @property
    def closed(self) -> bool:
        return self._closed

    def channels(self) -> int:
        """Coupons with a running channel in this process."""
        return len(self._channels)

    def latest(self, coupon_id: str) -> StockState | None:
        """The latest state a running channel read for this coupon (None when nobody here watches it)."""
        channel = self._channels.get(coupon_id)
        return None if channel is None else channel.state

    def vouches_for(self, coupon_id: str) -> bool:
        """This process watches the coupon and its last read found the gate: the coupon exists and has a gate."""
        channel = self._channels.get(coupon_id)
        return channel is not None and channel.state is not None and channel.gate_found

    def subscribe(self, coupon_id: str) -> Subscription:
        channel = self._channels.get(coupon_id)
        if channel is None:
            channel = self._channels[coupon_id] = _Channel(coupon_id)
        channel.subscribers += 1
        STOCK_STREAMS.inc()
        if (channel.greenlet is None or channel.greenlet.dead) and not self._closed:
            channel.greenlet = gevent.spawn(self._run, channel)
        return Subscription(self, channel)

    def close(self) -> None:
        """End every stream of this process (worker shutdown): subscribers wake and see `closed`."""
        self._closed = True
        for channel in list(self._channels.values()):
            channel.wake.set()
            channel.changed.set()

    def _leave(self, channel: _Channel) -> None:
        channel.subscribers -= 1
        STOCK_STREAMS.dec()
        if channel.subscribers <= 0:
            channel.wake.set()  # its greenlet stops now instead of after its next read
            if channel.greenlet is None or channel.greenlet.dead:
                self._forget(channel)

    def _forget(self, channel: _Channel) -> None:
        if self._channels.get(channel.coupon_id) is channel and channel.subscribers <= 0:
            del self._channels[channel.coupon_id]

    def _run(self, channel: _Channel) -> None:
        pulsed = time.monotonic()
        try:
            while channel.subscribers > 0 and not self._closed:
                started = time.monotonic()
                channel.wake.clear()
                version = channel.version
                try:
                    self._tick(channel)
                except Exception as exc:  # a bug, not a failed read (_tick handles those): the channel lives on
                    self._log_failure(channel, f"unexpected {type(exc).__name__}: {exc}")
                now = time.monotonic()
                if channel.version != version:
                    pulsed = now  # a publish wakes everyone too
                elif now - pulsed >= self.pulse_s:
                    channel.pulse()
                    pulsed = now
                channel.wake.wait(max(self.tick_s - (now - started), 0.0))
        finally:
            # No switch between the loop's last check and here: a subscriber arriving later finds no channel and
            # starts a new one, and one arriving earlier kept this loop going.
            self._forget(channel)
            channel.pulse()  # subscribers left (the feed closed, or this greenlet was killed) see the end at once

    def _tick(self, channel: _Channel) -> None:
        try:
            reading = self._read(channel.coupon_id)
        except Exception as exc:  # any failure skips this tick; the channel and its streams live on
            _READ_ERROR.inc()
            self._log_failure(channel, f"{type(exc).__name__}: {exc}")
            return
        channel.gate_found = reading is not None
        if reading is None:
            _READ_MISSING.inc()
            self._log_failure(channel, "the gate has no meta (it is rebuilt on the next request)")
            return
        _READ_OK.inc()
        state = stock_state(channel.coupon_id, reading, self._clock_ms())
        if state != channel.state:
            channel.publish(state)
            if state.final:
                log.info(
                    "live stock: coupon %s is %s (reserved %d of %d); %d streams of this worker told",
                    state.coupon_id,
                    state.status.value,
                    state.reserved,
                    state.total,
                    channel.subscribers,
                )

    def _log_failure(self, channel: _Channel, reason: str) -> None:
        """At most one line per coupon per error_log_every_s, however many ticks fail meanwhile."""
        now = time.monotonic()
        if now - channel.last_failure_log < self.error_log_every_s:
            channel.unlogged_failures += 1
            return
        log.warning(
            "live stock: reading the gate of coupon %s failed (%s); the tick is skipped and its streams stay open"
            " (%d failed reads not logged before this line; the next line in %.0f s at the earliest)",
            channel.coupon_id,
            reason,
            channel.unlogged_failures,
            self.error_log_every_s,
        )
        channel.last_failure_log = now
        channel.unlogged_failures = 0
