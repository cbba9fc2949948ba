"""What happened to a coupon, for its admins: the winners ledger (also as CSV, in chunks) and the change events."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from coupon.adapters import coupon_events_repo, issued_repo
from coupon.adapters.db_session import DbSession
from coupon.adapters.issued_repo import LedgerRow
from coupon.domain.commands import EventsQuery, LedgerQuery, RankPosition
from coupon.domain.models import Coupon, CouponEvent
from coupon.services.catalog import get_coupon

EXPORT_CHUNK = 1000


@dataclass(frozen=True)
class LedgerPage:
    rows: list[LedgerRow]
    next: RankPosition | None  # where the next page starts; None: this was the last


@dataclass(frozen=True)
class EventEntry:
    event: CouponEvent
    actor_name: str | None  # the acting admin's username; None for the CLI or a deleted account


@dataclass(frozen=True)
class EventsPage:
    entries: list[EventEntry]
    next_before_id: int | None  # the next page holds the events older than this id; None: this was the last


def issued_page(session: DbSession, coupon_id: str, query: LedgerQuery) -> LedgerPage:
    """One page of the winners by rank; CouponNotFound for an unknown coupon."""
    get_coupon(session, coupon_id)
    rows = issued_repo.ledger_page(session, coupon_id, query.limit + 1, query.after)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return LedgerPage(rows, RankPosition(rows[-1].rank, rows[-1].row_id) if more else None)


def issued_chunks(
    session: DbSession, coupon_id: str, chunk: int = EXPORT_CHUNK
) -> tuple[Coupon, Iterator[list[LedgerRow]]]:
    """The coupon and its whole ledger by rank, `chunk` rows at a time (memory stays bounded by one chunk).

    All chunks are read in one transaction, so under InnoDB's REPEATABLE READ they form one consistent snapshot
    even while the consumer is still writing rows. CouponNotFound (raised at once) for an unknown coupon.
    """
    coupon = get_coupon(session, coupon_id)

    def chunks() -> Iterator[list[LedgerRow]]:
        after: RankPosition | None = None
        while True:
            rows = issued_repo.ledger_page(session, coupon_id, chunk, after)
            if rows:
                yield rows
            if len(rows) < chunk:
                return
            after = RankPosition(rows[-1].rank, rows[-1].row_id)

    return coupon, chunks()


def events_page(session: DbSession, coupon_id: str, query: EventsQuery) -> EventsPage:
    """One page of the coupon's change events, newest first; CouponNotFound for an unknown coupon."""
    get_coupon(session, coupon_id)
    rows = coupon_events_repo.page(session, coupon_id, query.limit + 1, query.before_id)
    more = len(rows) > query.limit
    entries = [EventEntry(event, name) for event, name in rows[: query.limit]]
    return EventsPage(entries, entries[-1].event.id if more else None)
