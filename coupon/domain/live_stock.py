"""Live stock as shoppers see it: the state of one coupon's gate, its event id, and when a subscriber is sent it.

A state is what one read of the gate says (reservation counter and meta) judged at a moment: still to open, on sale,
sold out, ended or disabled. The last three are final: a stream sends them and ends.

Event ids encode the whole visible state, `<phase>.<reserved>.<total>.<status letter>` (e.g. `1.137.500.A`), so
they order a coupon's states by its progress (phase: 0 not started, 1 on sale, 2 final; then the reservation
counter, which only grows during a sale) and two ids are equal exactly when the states are. A reconnecting client's
Last-Event-ID is therefore enough to tell whether anything changed since its last event. The order is a reading aid
(the counter can also go down, when a reservation is released); resuming compares for equality only.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class StockStatus(str, enum.Enum):
    NOT_STARTED = "NOT_STARTED"
    ACTIVE = "ACTIVE"
    SOLD_OUT = "SOLD_OUT"
    ENDED = "ENDED"
    DISABLED = "DISABLED"


_LETTER = {
    StockStatus.NOT_STARTED: "N",
    StockStatus.ACTIVE: "A",
    StockStatus.SOLD_OUT: "S",
    StockStatus.ENDED: "E",
    StockStatus.DISABLED: "D",
}
_BY_LETTER = {letter: status for status, letter in _LETTER.items()}
_PHASE = {
    StockStatus.NOT_STARTED: 0,
    StockStatus.ACTIVE: 1,
    StockStatus.SOLD_OUT: 2,
    StockStatus.ENDED: 2,
    StockStatus.DISABLED: 2,
}
FINAL_STATUSES = frozenset({StockStatus.SOLD_OUT, StockStatus.ENDED, StockStatus.DISABLED})
_EVENT_ID = re.compile(r"([0-2])\.(\d{1,12})\.(\d{1,12})\.([NASED])", re.ASCII)


class GateReading(NamedTuple):
    """One read of a coupon's gate: the reservation counter and the meta hash (window in epoch ms)."""

    reserved: int
    total: int
    starts_ms: int
    ends_ms: int
    coupon_status: str  # CouponStatus value: ACTIVE or DISABLED


class StockPosition(NamedTuple):
    """A state as its event id names it; tuples compare by (phase, reserved, ...): the coupon's progress."""

    phase: int
    reserved: int
    total: int
    status: StockStatus

    @property
    def event_id(self) -> str:
        return f"{self.phase}.{self.reserved}.{self.total}.{_LETTER[self.status]}"


@dataclass(frozen=True, slots=True)
class StockState:
    coupon_id: str
    total: int
    reserved: int
    status: StockStatus
    # Derived once: every subscriber of a state asks for them (not part of equality or the hash).
    final: bool = field(init=False, compare=False, repr=False)
    position: StockPosition = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "final", self.status in FINAL_STATUSES)
        object.__setattr__(self, "position", StockPosition(_PHASE[self.status], self.reserved, self.total, self.status))

    @property
    def remaining(self) -> int:
        return max(self.total - self.reserved, 0)

    @property
    def event_id(self) -> str:
        return self.position.event_id

    @property
    def event_name(self) -> str:
        """The SSE event type: `stock` while the sale goes on, `sold-out` or `closed` for the final state."""
        if self.status is StockStatus.SOLD_OUT:
            return "sold-out"
        if self.final:
            return "closed"
        return "stock"

    def as_json(self) -> dict[str, Any]:
        return {
            "couponId": self.coupon_id,
            "total": self.total,
            "reserved": self.reserved,
            "remaining": self.remaining,
            "status": self.status.value,
        }


def stock_state(coupon_id: str, reading: GateReading, now_ms: int) -> StockState:
    """Judge a reading at now_ms, in reserve.lua's order: a closed window or a disabled coupon before stock."""
    if reading.coupon_status != "ACTIVE":
        status = StockStatus.DISABLED
    elif now_ms < reading.starts_ms:
        status = StockStatus.NOT_STARTED
    elif now_ms >= reading.ends_ms:
        status = StockStatus.ENDED
    elif reading.reserved >= reading.total:
        status = StockStatus.SOLD_OUT
    else:
        status = StockStatus.ACTIVE
    return StockState(coupon_id, reading.total, reading.reserved, status)


def parse_event_id(raw: str | None) -> StockPosition | None:
    """A Last-Event-ID back to its position; None for a missing or malformed one (the client is sent the state)."""
    match = _EVENT_ID.fullmatch(raw.strip()) if raw else None
    if match is None:
        return None
    status = _BY_LETTER[match.group(4)]
    position = StockPosition(int(match.group(1)), int(match.group(2)), int(match.group(3)), status)
    return position if position.phase == _PHASE[status] else None


def needs_sending(last: StockPosition | None, state: StockState) -> bool:
    """Is `state` sent to a subscriber whose last event was `last`? When it differs; a final state always is (a
    client that reconnects after the final event is told it again, and its stream ends)."""
    return state.final or last != state.position
