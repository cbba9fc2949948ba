"""Live stock for shoppers: what one stream sends, from the process's StockFeed (the view turns it into SSE).

open_stream() answers the questions that must be answered before the stream starts (does the coupon exist, has it a
gate) and returns the stream: a retry hint, then each changed state (only those a client's Last-Event-ID has not
seen), heartbeats while nothing changes, and its end: after the final state (sold out, ended, disabled), after the
stream's maximum duration (the client reconnects with its Last-Event-ID), or when the process shuts down.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from coupon.adapters.db_session import DbSession
from coupon.adapters.stock_feed import StockFeed
from coupon.domain.errors import RedisUnavailable
from coupon.domain.live_stock import StockPosition, StockState, needs_sending, parse_event_id
from coupon.domain.vocabulary import utcnow
from coupon.services import catalog
from coupon.services.gate_recovery import GateRecovery, rebuild_gate


@dataclass(frozen=True, slots=True)
class StreamSettings:
    heartbeat_s: float
    max_duration_s: float
    retry_ms: int


@dataclass(frozen=True, slots=True)
class Retry:
    """How long a client waits before it reconnects (the SSE `retry:` field)."""

    ms: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Nothing changed for a while: a comment line keeps the connection (and proxies) alive."""


StreamItem = Retry | Heartbeat | StockState
HEARTBEAT = Heartbeat()


def open_stream(
    session: DbSession,
    recovery: GateRecovery,
    feed: StockFeed,
    coupon_id: str,
    last_event_id: str | None,
    settings: StreamSettings,
) -> Iterator[StreamItem]:
    """Check the coupon (404 E3001 here, before any byte of the stream), then return its stream.

    A coupon this process already watches exists and has a gate: its streams cost no DB or Redis call to open (one
    whose gate went missing, Redis wiped, is checked again, and its gate rebuilt).
    """
    if not feed.vouches_for(coupon_id):
        catalog.get_coupon(session, coupon_id)
        if not recovery.gate.has_meta(coupon_id):
            _try_rebuild(session, recovery, coupon_id)
    return stream(feed, coupon_id, parse_event_id(last_event_id), settings)


def _try_rebuild(session: DbSession, recovery: GateRecovery, coupon_id: str) -> None:
    """Rebuild a lost gate if it may be now; while it waits for what was in flight (or after its sale, when it stays
    retired) the stream opens all the same and sends the stock once the gate is back."""
    try:
        rebuild_gate(session, recovery, coupon_id, utcnow())
    except RedisUnavailable as exc:
        if exc.retry_after is None:
            raise


def stream(
    feed: StockFeed,
    coupon_id: str,
    last: StockPosition | None,
    settings: StreamSettings,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[StreamItem]:
    """The items of one stream; it subscribes when first iterated and leaves when closed or finished."""
    yield Retry(settings.retry_ms)
    # Streams opened together (a sale's crowd) would all end together and reconnect as one wave: spread them.
    deadline = clock() + settings.max_duration_s * random.uniform(0.9, 1.0)
    with feed.subscribe(coupon_id) as subscription:
        seen = 0
        quiet_since = clock()
        while not subscription.closed:
            version, state = subscription.current()
            if version > seen and state is not None:
                seen = version
                if needs_sending(last, state):
                    yield state
                    if state.final:
                        return
                    last = state.position
                    quiet_since = clock()
                continue
            now = clock()
            if now >= deadline:
                return
            if now - quiet_since >= settings.heartbeat_s:
                yield HEARTBEAT
                quiet_since = clock()
                continue
            subscription.wait(seen)  # a new state, or the feed's next pulse (deadline and heartbeat are checked then)
