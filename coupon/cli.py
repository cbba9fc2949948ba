"""Flask CLI commands for operators: `flask --app wsgi <command> --help`."""

from __future__ import annotations

import csv
import getpass
import sys
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta
from typing import IO, Any

import click
from flask import Flask, current_app

from coupon import settings
from coupon.adapters.kafka_topics import TopicSettings, ensure_topics, topic_settings
from coupon.domain.commands import CouponDraft
from coupon.domain.errors import AppError
from coupon.domain.vocabulary import CouponPhase, CouponStatus, Role, iso, phase_of, utcnow
from coupon.extensions import db
from coupon.http.cursors import encode_coupon_cursor
from coupon.http.minting import user_token
from coupon.http.parsing import parse_uuid
from coupon.http.presenters import LEDGER_CSV_HEADER, ledger_csv_row
from coupon.http.schemas import bodies, queries
from coupon.http.schemas.fields import NAME_MAX_LENGTH
from coupon.http.schemas.queries import LISTING_LIMIT
from coupon.observability.progress import Progress
from coupon.resources import current
from coupon.services import (
    accounts,
    catalog,
    failure_records,
    gate_recovery,
    ledger,
    lifecycle,
    load_users,
    reconcile,
)
from coupon.sweeper import sweep


def init_app(app: Flask) -> None:
    for command in (
        create_admin,
        create_coupon,
        seed,
        create_topics,
        mint_users,
        rebuild_gate,
        reconcile_coupon,
        failures_group,
        delete_user,
        coupons_group,
        export_issued,
    ):
        app.cli.add_command(command)


def _fail(error: AppError) -> None:
    click.echo(f"error {error.code}: {error.message}" + (f" {error.data}" if error.data else ""), err=True)
    sys.exit(1)


def cli_actor() -> str:
    """Who the coupon_events rows of CLI changes name: "cli:<os user>", or "cli" when the OS names nobody."""
    try:
        return f"cli:{getpass.getuser()}"[:100]
    except (KeyError, OSError):  # no such user in the password database, no login name
        return "cli"


@click.command("create-admin")
@click.argument("username")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True, help="The admin's password.")
def create_admin(username: str, password: str) -> None:
    """Create the admin USERNAME, or promote it and reset its password (idempotent)."""
    user, created = accounts.ensure_admin(db.session, username, password)
    click.echo(f"admin {user.username} ({user.id}) {'created' if created else 'updated'}")


@click.command("delete-user")
@click.argument("user")
def delete_user(user: str) -> None:
    """Delete the account USER (a username or a user id); its still-valid tokens are refused at once."""
    try:
        accounts.delete_user(db.session, current().limiter, accounts.resolve_user_id(db.session, user))
    except AppError as error:
        _fail(error)
    click.echo(f"user {user} deleted")


@click.command("create-coupon")
@click.option("--name", required=True, help=f"Display name (up to {NAME_MAX_LENGTH} characters).")
@click.option("--type", "ctype", default="GENERAL", show_default=True, help="CHICKEN, HAMBURGER, PIZZA, ...")
@click.option("--discount-type", default="FIXED", show_default=True, help="FIXED or PERCENTAGE")
@click.option(
    "--discount-value",
    type=float,
    default=1000,
    show_default=True,
    help="Amount off (FIXED) or percent off (PERCENTAGE).",
)
@click.option("--quantity", type=int, required=True, help="Total stock.")
@click.option("--starts-at", default=None, help="ISO-8601 start of the issue window (default: now).")
@click.option("--expires-at", default=None, help="ISO-8601 expiry (default: in 7 days).")
@click.option("--hours", type=float, default=None, help="Expire this many hours from now instead.")
def create_coupon(
    name: str,
    ctype: str,
    discount_type: str,
    discount_value: float,
    quantity: int,
    starts_at: str | None,
    expires_at: str | None,
    hours: float | None,
) -> None:
    """Create a coupon and prime its Redis gate; prints the coupon id."""
    now = utcnow()
    try:
        draft = _draft(
            now,
            name=name,
            type=ctype,
            discount_type=discount_type,
            # A whole amount goes in as an integer, as it would from JSON (3000, not 3000.0).
            discount_value=discount_value if discount_value != int(discount_value) else int(discount_value),
            total_quantity=quantity,
            issue_starts_at=starts_at or None,
            expires_at=expires_at or now + timedelta(hours=hours if hours is not None else 24 * 7),
        )
        coupon = catalog.create_coupon(db.session, current().gate, draft, cli_actor())
    except AppError as exc:
        _fail(exc)
        return
    click.echo(coupon.id)


def _draft(now: datetime, **values: Any) -> CouponDraft:
    """A coupon draft from the command line, under the same rules as POST /api/coupon (400 E4000 → exit 1)."""
    return bodies.CouponDraft.check(values, {"now": now}, by_name=True).command(now)


# Demo coupons for `flask seed`: (name, type, discount type, value, quantity, opens in hours, expires in hours).
DEMO_COUPONS: tuple[tuple[str, str, str, int, int, float, float], ...] = (
    ("Demo: first 100 get a chicken", "CHICKEN", "FIXED", 3000, 100, 0, 24 * 7),
    ("Demo: pizza 20% off for 500", "PIZZA", "PERCENTAGE", 20, 500, 0, 24 * 7),
    ("Demo: burger rush for 10,000", "HAMBURGER", "FIXED", 2000, 10_000, 0, 24 * 7),
    ("Demo: coffee opens in an hour", "COFFEE", "FIXED", 1500, 50, 1, 24 * 7),
)


@click.command("seed")
@click.option(
    "--users",
    "user_count",
    type=int,
    default=0,
    show_default=True,
    help="Also mint this many users and write 'user_id token' lines to --out.",
)
@click.option("--out", type=click.File("w"), default="-", help="Where the users' lines go (with --users).")
def seed(user_count: int, out: IO[str]) -> None:
    """Create the demo coupons (skipping those that exist) and print their ids; optionally mint users."""
    now = utcnow()
    gate = current().gate
    progress = Progress("seed coupons", total=len(DEMO_COUPONS), every=1)
    for name, ctype, dtype, value, quantity, opens_in, expires_in in DEMO_COUPONS:
        existing = catalog.find_by_name(db.session, name)
        if existing is not None:
            click.echo(f"{existing.id}  {name} (exists)")
        else:
            try:
                draft = _draft(
                    now,
                    name=name,
                    type=ctype,
                    discount_type=dtype,
                    discount_value=value,
                    total_quantity=quantity,
                    issue_starts_at=now + timedelta(hours=opens_in) if opens_in else None,
                    expires_at=now + timedelta(hours=expires_in),
                )
                coupon = catalog.create_coupon(db.session, gate, draft, cli_actor())
            except AppError as exc:
                _fail(exc)
                return
            click.echo(f"{coupon.id}  {name} ({quantity} units)")
        progress.advance()
    progress.finish()
    if user_count:
        _mint(user_count, f"demo-{uuid.uuid4().hex[:8]}", "demo-password", out)


def _mint(count: int, prefix: str, password: str, out: IO[str]) -> None:
    progress = Progress("mint users", total=count, every=1000)
    for chunk in load_users.mint_users(db.session, count, prefix, accounts.hash_password(password), user_token):
        out.writelines(f"{user_id} {token}\n" for user_id, token in chunk)
        progress.advance(len(chunk))
    out.flush()
    progress.finish()


@click.command("create-topics")
@click.option("--partitions", type=int, default=None, help="Partitions of coupon.issue (default: KAFKA_PARTITIONS).")
@click.option(
    "--replication-factor",
    type=click.IntRange(min=1),
    default=None,
    help="Copies of every partition (default: KAFKA_REPLICATION_FACTOR).",
)
@click.option(
    "--min-insync-replicas",
    type=click.IntRange(min=1),
    default=None,
    help="Topic config min.insync.replicas (default: KAFKA_MIN_INSYNC_REPLICAS).",
)
def create_topics(partitions: int | None, replication_factor: int | None, min_insync_replicas: int | None) -> None:
    """Create coupon.issue and coupon.issue.dlq if missing, with the replication settings; report both topics.

    Exits 1 when a topic exists with other replication settings than asked for: create-topics never changes an
    existing topic (a replication factor changes by partition reassignment, min.insync.replicas with
    kafka-configs --alter), so a topic left at RF 1 on a 3-broker cluster is said out loud, not hidden.
    """
    cfg = settings.current()
    count = partitions or cfg.kafka_partitions
    rf = replication_factor or cfg.kafka_replication_factor
    min_isr = min_insync_replicas or cfg.kafka_min_insync_replicas
    if min_isr > rf:
        raise click.BadParameter(f"min.insync.replicas {min_isr} exceeds the replication factor {rf}")
    wanted = {cfg.kafka_issue_topic: count, cfg.kafka_dlq_topic: 1}
    try:
        created = ensure_topics(cfg.kafka_bootstrap_servers, wanted, replication_factor=rf, min_insync_replicas=min_isr)
        found = topic_settings(cfg.kafka_bootstrap_servers, list(wanted))
        # A broker learns of a new topic from the metadata log a moment after the controller: ask again briefly.
        deadline = time.monotonic() + 15
        while len(found) < len(wanted) and time.monotonic() < deadline:
            time.sleep(0.5)
            found = topic_settings(cfg.kafka_bootstrap_servers, list(wanted))
    except AppError as exc:
        _fail(exc)
        return
    click.echo(f"topics created: {', '.join(created) if created else 'none (all exist)'}")
    problems = []
    for name in wanted:
        topic = found.get(name)
        if topic is None:
            problems.append(f"{name}: not found after create-topics")
            continue
        click.echo(_describe(topic, created=name in created))
        if topic.replication_factor != rf:
            problems.append(
                f"{name} exists with replication factor {topic.replication_factor}, not {rf}"
                " (KAFKA_REPLICATION_FACTOR): create-topics does not change an existing topic; reassign its partitions"
                " (kafka-reassign-partitions) or recreate it"
            )
        if topic.min_insync_replicas != min_isr:
            problems.append(
                f"{name} has min.insync.replicas={topic.min_insync_replicas}, not {min_isr}"
                f" (KAFKA_MIN_INSYNC_REPLICAS): kafka-configs --alter --entity-type topics --entity-name {name}"
                f" --add-config min.insync.replicas={min_isr}"
            )
    for problem in problems:
        click.echo(f"MISMATCH {problem}", err=True)
    if problems:
        sys.exit(1)


def _describe(topic: TopicSettings, created: bool) -> str:
    return (
        f"{topic.name}: {topic.partitions} partitions, replication factor {topic.replication_factor},"
        f" min.insync.replicas {topic.min_insync_replicas}" + (" (created)" if created else " (existed)")
    )


@click.command("mint-users")
@click.argument("count", type=int)
@click.option("--prefix", default=None, help="Username prefix (default: a random one).")
@click.option("--out", type=click.File("w"), default="-", help="Where to write 'user_id token' lines.")
@click.option("--password", default="load-test-password", show_default=True, help="Password of every user.")
def mint_users(count: int, prefix: str | None, out: IO[str], password: str) -> None:
    """Create COUNT users in bulk and write 'user_id token' per line (for load runs); progress on stderr."""
    _mint(count, prefix or f"load-{uuid.uuid4().hex[:8]}", password, out)


@click.command("rebuild-gate")
@click.argument("coupon_id")
@click.option(
    "--in-flight-wait",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds a reservation made just before the drop may take to reach Kafka (default: GATE_REBUILD_WAIT_MS, unset"
    " the publisher's bound, 1 s + KAFKA_DELIVERY_TIMEOUT_MS + 1 s). Set 0 only when no API serves the coupon.",
)
def rebuild_gate(coupon_id: str, in_flight_wait: float | None) -> None:
    """Drop and rebuild a coupon's Redis gate from the DB and the records still on Kafka."""
    recovery = current().recovery
    if in_flight_wait is not None:
        recovery = replace(recovery, in_flight_ms=int(in_flight_wait * 1000))
    started = time.monotonic()
    click.echo(f"[rebuild-gate] dropping the gate of {coupon_id}", err=True)
    recovery.gate.forget([coupon_id])
    while True:
        try:
            rebuilt = gate_recovery.rebuild_gate(db.session, recovery, coupon_id, utcnow())
            break
        except AppError as exc:
            wait_s = getattr(exc, "retry_after", None)
            if wait_s is None:
                _fail(exc)
                return
            click.echo(f"[rebuild-gate] {exc.message} (waiting {wait_s} s for what was in flight)", err=True)
            time.sleep(wait_s)
    if rebuilt is gate_recovery.Rebuilt.NOT_FOUND:
        click.echo(f"no coupon {coupon_id}", err=True)
        sys.exit(1)
    if rebuilt is gate_recovery.Rebuilt.ENDED:
        click.echo(f"coupon {coupon_id}: its issue window has ended; the gate stays retired (the DB answers)")
        return
    click.echo(f"[rebuild-gate] done in {time.monotonic() - started:.1f}s", err=True)
    click.echo(f"gate of {coupon_id} rebuilt: reserved={recovery.gate.reserved(coupon_id)}")


@click.command("reconcile")
@click.argument("coupon_id")
@click.option("--repair", is_flag=True, help="First settle the unconfirmed reservations (the sweeper, now).")
@click.option(
    "--older-than",
    type=float,
    default=None,
    help="With --repair: settle reservations older than this many seconds (default SETTLE_AFTER_SECONDS).",
)
@click.option(
    "--wait",
    "wait_s",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Look again every 0.5 s until Redis and the DB agree or this many seconds passed (the consumers drain).",
)
def reconcile_coupon(coupon_id: str, repair: bool, older_than: float | None, wait_s: float) -> None:
    """Compare Redis with the DB for a coupon, naming the users behind a mismatch; exit 1 on any mismatch (run it
    once the consumers drained, or give it --wait)."""
    try:
        cid = parse_uuid(coupon_id)
        if repair:
            click.echo("[reconcile] settling unconfirmed reservations (waits for the consumers to drain)", err=True)
            report = sweep(current_app, older_than)
            if report.lagging:
                click.echo(f"[reconcile] the consumers are {report.lagging} records behind: nothing settled", err=True)
            for item in report.settled:
                click.echo(f"settled {item.coupon_id} {item.user_id} {item.event_id}: {item.outcome}")
        result = reconcile.reconcile_when_drained(db.session, current().gate, cid, wait_s, _WaitNotes().note)
    except AppError as exc:
        _fail(exc)
        return
    for name in (
        "total",
        "issued_count",
        "issued_rows",
        "unresolved_failures",
        "rejections",
        "redis_reserved",
        "redis_participants",
    ):
        click.echo(f"{name:20} {getattr(result, name)}")
    if result.ok:
        click.echo(
            "OK: the sale has ended and its gate is retired; the DB agrees with itself"
            if result.gate_retired
            else "OK: Redis and the DB agree"
        )
        return
    for problem in result.problems:
        click.echo(f"MISMATCH: {problem}", err=True)
    for user, state in result.redis_only.items():
        click.echo(f"redis-only {user} hold={state}", err=True)
    for user in result.db_only:
        click.echo(f"db-only {user}", err=True)
    sys.exit(1)


class _WaitNotes:
    """reconcile --wait's progress: what still disagrees, at most once every few seconds."""

    EVERY_S = 5.0

    def __init__(self) -> None:
        self.last = float("-inf")

    def note(self, result: reconcile.Reconciliation, left_s: float) -> None:
        now = time.monotonic()
        if now - self.last < self.EVERY_S:
            return
        self.last = now
        click.echo(
            f"[reconcile] not yet: {result.issued_rows} rows, Redis reserved {result.redis_reserved}"
            f" ({len(result.problems)} mismatches); looking again for {left_s:.0f}s more",
            err=True,
        )


@click.group("failures")
def failures_group() -> None:
    """Failed issue records: list, count, retry."""


@failures_group.command("list")
@click.option(
    "--status",
    type=click.Choice(["PENDING", "RESOLVED", "DEAD"]),
    default=None,
    help="Only records in this status (default: all).",
)
@click.option("--limit", type=int, default=50, show_default=True, help="Show at most this many.")
def failures_list(status: str | None, limit: int) -> None:
    """List failure records, newest first."""
    rows = failure_records.failure_view(db.session, status, limit).items
    click.echo(f"{'id':>8}  {'status':8} {'retries':>7}  {'coupon':36}  {'user':36}  error")
    for r in rows:
        click.echo(f"{r.id:>8}  {r.status:8} {r.retry_count:>7}  {r.coupon_id:36}  {r.user_id:36}  {r.error[:60]}")
    click.echo(f"({len(rows)} shown)")


@failures_group.command("counts")
def failures_counts() -> None:
    """Count failure records by status."""
    for status, n in failure_records.failure_counts(db.session).items():
        click.echo(f"{status:8} {n}")


@failures_group.command("retry")
@click.argument("failure_id", type=int, required=False)
@click.option("--all", "retry_all", is_flag=True, help="Republish every retryable PENDING record now.")
def failures_retry(failure_id: int | None, retry_all: bool) -> None:
    """Republish one record (also a DEAD one) or --all retryable ones, now."""
    publisher = current().publisher
    try:
        if retry_all:
            progress = Progress("republish", total=failure_records.failure_counts(db.session)["PENDING"], every=500)
            db.session.rollback()
            report = failure_records.republish_failed(
                db.session,
                publisher,
                settings.current().failure_max_retries,
                utcnow(),
                settle_seconds=settings.current().republish_interval_seconds,
                on_batch=progress.advance,
            )
            progress.finish()
            click.echo(f"republished {report.republished}, newly dead {report.dead}")
            return
        if failure_id is None:
            raise click.UsageError("give a FAILURE_ID or --all")
        if not failure_records.retry_one(db.session, publisher, failure_id, utcnow()):
            click.echo(f"no unresolved failure record {failure_id}", err=True)
            sys.exit(1)
        click.echo(f"record {failure_id} republished")
    except AppError as exc:
        _fail(exc)


@click.group("coupons")
def coupons_group() -> None:
    """Coupons: list them, switch them off and on, close or change them (recorded as the actor cli:<os user>)."""


@coupons_group.command("list")
@click.option(
    "--status", type=click.Choice([s.value for s in CouponStatus]), default=None, help="Only coupons in this status."
)
@click.option(
    "--phase",
    type=click.Choice([p.value for p in CouponPhase]),
    default=None,
    help="live (window open now), upcoming or ended.",
)
@click.option(
    "--limit",
    type=int,
    default=LISTING_LIMIT[0],
    show_default=True,
    help=f"Show at most this many (1-{LISTING_LIMIT[1]}).",
)
@click.option("--cursor", default=None, help="Continue after the page that printed this cursor.")
def coupons_list(status: str | None, phase: str | None, limit: int, cursor: str | None) -> None:
    """List coupons newest first, with their live stock."""
    now = utcnow()
    try:
        query = queries.ListingParams.check(
            {"status": status, "phase": phase, "limit": limit, "cursor": cursor}, by_name=True
        ).command()
        page = catalog.list_coupons(db.session, current().recovery, query, Role.ADMIN, now)
    except AppError as exc:
        _fail(exc)
        return
    click.echo(f"{'id':36}  {'status':8} {'phase':8} {'reserved':>9}/{'total':<9} {'expires':24}  name")
    for item in page.items:
        c, stock = item.coupon, item.stock
        click.echo(
            f"{c.id:36}  {c.status.value:8} {phase_of(c.issue_starts_at, c.expires_at, now).value:8}"
            f" {stock.reserved:>9}/{stock.total:<9} {iso(c.expires_at) or '':24}  {c.name}"
        )
    more = f"; next page: --cursor {encode_coupon_cursor(page.next)}" if page.next is not None else ""
    click.echo(f"({len(page.items)} shown{more})")


def _change(coupon_id: str, **values: Any) -> None:
    """Run one change through the same model and service as PATCH /api/coupon/{id}; print one line."""
    try:
        cid = parse_uuid(coupon_id)
        patch = bodies.CouponPatch.check(values, by_name=True).command()
        update = lifecycle.update_coupon(db.session, current().gate, cid, patch, cli_actor())
    except AppError as exc:
        _fail(exc)
        return
    if update.action is None:
        click.echo(f"coupon {cid} unchanged")
        return
    changed = ", ".join(f"{field} {c['from']} -> {c['to']}" for field, c in update.changes.items())
    click.echo(f"coupon {cid} {update.action.value}: {changed}")


@coupons_group.command("disable")
@click.argument("coupon_id")
def coupons_disable(coupon_id: str) -> None:
    """The kill switch: no issue request for COUPON_ID is accepted from now on (409 E3006)."""
    _change(coupon_id, status=CouponStatus.DISABLED)


@coupons_group.command("enable")
@click.argument("coupon_id")
def coupons_enable(coupon_id: str) -> None:
    """Accept issue requests for COUPON_ID again (within its window and stock)."""
    _change(coupon_id, status=CouponStatus.ACTIVE)


@coupons_group.command("close")
@click.argument("coupon_id")
def coupons_close(coupon_id: str) -> None:
    """End the issue window of COUPON_ID now (expiresAt = now; its issued coupons expire with it)."""
    _change(coupon_id, expires_at=utcnow())


@coupons_group.command("set")
@click.argument("coupon_id")
@click.option("--quantity", type=int, default=None, help="New total stock (never below what is reserved or issued).")
@click.option("--starts", default=None, help="New ISO-8601 start of the issue window.")
@click.option("--expires", default=None, help="New ISO-8601 end of the issue window (extend or close early).")
@click.option("--name", default=None, help="New display name.")
def coupons_set(
    coupon_id: str, quantity: int | None, starts: str | None, expires: str | None, name: str | None
) -> None:
    """Change the quantity, window or name of COUPON_ID."""
    values = {
        key: value
        for key, value in (
            ("total_quantity", quantity),
            ("issue_starts_at", starts),
            ("expires_at", expires),
            ("name", name),
        )
        if value is not None
    }
    if not values:
        raise click.UsageError("give at least one of --quantity, --starts, --expires, --name")
    _change(coupon_id, **values)


@click.command("export-issued")
@click.argument("coupon_id")
@click.option("--out", type=click.File("w", encoding="utf-8"), default="-", help="CSV file to write; - is stdout.")
@click.option("--chunk", type=click.IntRange(1, 10_000), default=1000, show_default=True, help="Rows read per query.")
def export_issued(coupon_id: str, out: IO[str], chunk: int) -> None:
    """Write the winners ledger of COUPON_ID as CSV (header row, by rank), read in chunks; progress on stderr."""
    try:
        coupon, chunks = ledger.issued_chunks(db.session, parse_uuid(coupon_id), chunk)
        progress = Progress("export issued", total=coupon.issued_count, every=max(chunk, 1000))
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(LEDGER_CSV_HEADER)
        for rows in chunks:
            writer.writerows(ledger_csv_row(row) for row in rows)
            progress.advance(len(rows))
    except AppError as exc:
        _fail(exc)
        return
    out.flush()
    progress.finish()
