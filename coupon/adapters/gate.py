"""The Redis issue gate: typed wrappers around reserve.lua / release.lua / update_meta.lua and the gate's metadata."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import redis
from redis.typing import EncodableT, FieldT

from coupon.adapters import keys
from coupon.adapters.lua import run_many, run_many_replicated, source
from coupon.adapters.redis_client import REDIS_ERRORS, RedisClient
from coupon.domain.errors import AppError, IssueNotConfirmed, RedisUnavailable
from coupon.observability.instruments import GATE_BATCH, GATE_LATENCY

log = logging.getLogger(__name__)

REBUILD_LOCK_MS = 10_000
REBUILD_WAIT_S = 5.0
_CHUNK = 1000
# A sorted-set range read withscores=True: (member, score) pairs. redis-py types every range reply alike
# (members, or pairs under either protocol), so the reads below say which one they asked for.
_ScoredMembers = list[tuple[bytes | str, float]]


class GateOutcome(enum.Enum):
    """What reserve.lua decided; the values are the script's return codes."""

    ACCEPTED = 0
    DUPLICATE = 1
    SOLD_OUT = 2
    NOT_STARTED = 3
    ENDED = 4
    DISABLED = 5
    NEEDS_REBUILD = 6
    SETTLING = 7
    REPLAYED = 8


class HoldMode(enum.Enum):
    """What release.lua does to a hold (see its header)."""

    CONFIRM = "confirm"
    RESTORE = "restore"
    UNCONFIRM = "unconfirm"
    REVOKE = "revoke"
    RELEASE = "release"


class MetaUpdate(enum.Enum):
    """What update_meta.lua did; the values are the script's return codes."""

    WRITTEN = 0
    MISSING = 1  # no meta hash: nothing written, the next request rebuilds the gate from the DB
    BELOW_RESERVED = 2  # the new total is below the reservations: nothing written


@dataclass(frozen=True)
class MetaUpdateResult:
    outcome: MetaUpdate
    reserved: int  # the gate's reservation counter when the script ran (0 when the meta was missing)


class GateRequest(NamedTuple):
    """One request at the gate: the token makes a re-run of it return the same decision."""

    coupon_id: str
    user_id: str
    token: str
    event_id: str


class Hold(NamedTuple):
    """A reservation as the sweeper and the publish path name it: by the event id its record carries."""

    coupon_id: str
    user_id: str
    event_id: str


@dataclass(frozen=True, slots=True)
class GateDecision:
    """`replicated` is False when the gate wants replica acknowledgements and too few came in time: the reservation
    exists on the master but may not survive its failover, so it must not be published yet."""

    outcome: GateOutcome
    rank: int
    event_id: str = ""
    replicated: bool = True


@dataclass(frozen=True)
class LossMark:
    """When a request first found the gate missing, and Redis' time now (both epoch ms by Redis' clock)."""

    lost_at_ms: int
    now_ms: int

    def wait_ms(self, in_flight_ms: int) -> int:
        """How long until every reservation made before the loss has become a record or failed for good."""
        return max(self.lost_at_ms + in_flight_ms - self.now_ms, 0)


@dataclass(frozen=True)
class GateMeta:
    """What the gate needs to know about a coupon (epoch milliseconds for the window)."""

    total: int
    starts_ms: int
    ends_ms: int
    status: str


@dataclass(frozen=True)
class GateSnapshot:
    """The gate's full state, rebuilt from the DB: meta, reservations and who holds them."""

    meta: GateMeta
    participants: dict[str, int]  # user id -> rank


@dataclass(frozen=True)
class HeldReservation:
    """A participant as Redis knows it; state None = rebuilt from the DB (confirmed)."""

    user_id: str
    rank: int
    state: str | None
    event_id: str | None
    touched_ms: int | None


def outcome_unknown(exc: BaseException) -> bool:
    """After this Redis error, may the command have run? Only a refused connection proves it did not."""
    if isinstance(exc, redis.TimeoutError):
        return True
    return not (isinstance(exc, redis.ConnectionError) and "connecting to" in str(exc))


def _failure(exc: BaseException) -> AppError:
    error: AppError = IssueNotConfirmed() if outcome_unknown(exc) else RedisUnavailable()
    error.__cause__ = exc
    return error


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _parse_hold(raw: bytes | str | None) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    state, _, rest = _text(raw).partition("|")
    return state, rest.partition("|")[2]


class Gate:
    """One object per process; safe to share between greenlets (the client pools connections).

    With `min_replica_acks` > 0 every reserve pipeline ends with a WAIT on each node it wrote to (the same round
    trip): a reservation is published only once that many replicas hold it, so a replica promoted after its master
    died never forgets a unit someone was promised.
    """

    def __init__(
        self,
        client: RedisClient,
        timeout_s: float = 5.0,
        adopt_after_ms: int = 30_000,
        min_replica_acks: int = 0,
        replica_ack_timeout_ms: int = 100,
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self.adopt_after_ms = adopt_after_ms
        self.min_replica_acks = min_replica_acks
        self.replica_ack_timeout_ms = replica_ack_timeout_ms
        self._unlock = client.register_script(source("unlock"))

    def reserve_many(self, requests: list[GateRequest]) -> list[GateDecision | BaseException]:
        """Decide many requests: one reserve.lua call per coupon, all calls in one pipeline; results in order.

        A timeout leaves the outcome unknown: the calls are run once more, which the tokens make safe (a reservation
        that was made is returned again). Still failing: IssueNotConfirmed, or RedisUnavailable when Redis refused
        the connection (then nothing ran).
        """
        by_coupon: dict[str, list[int]] = {}
        for index, request in enumerate(requests):
            by_coupon.setdefault(request.coupon_id, []).append(index)
        GATE_BATCH.observe(len(requests))
        started = time.perf_counter()
        adopt = str(self.adopt_after_ms)
        calls = [
            (keys.gate_keys(coupon_id), [adopt, *(a for i in indexes for a in requests[i][1:])])
            for coupon_id, indexes in by_coupon.items()
        ]
        try:
            replies, acked = self._run_reserve(calls)
        except REDIS_ERRORS as exc:
            error = _failure(exc)
            return [error] * len(requests)
        GATE_LATENCY.observe(time.perf_counter() - started)
        results: list[GateDecision | BaseException | None] = [None] * len(requests)
        for indexes, reply, replicated in zip(by_coupon.values(), replies, acked):
            if isinstance(reply, BaseException):
                for i in indexes:
                    results[i] = (
                        _failure(reply)
                        if isinstance(reply, REDIS_ERRORS)
                        else RedisUnavailable(f"The coupon gate failed: {reply}")
                    )
                continue
            for n, i in enumerate(indexes):
                results[i] = GateDecision(
                    GateOutcome(int(reply[3 * n])), int(reply[3 * n + 1]), _text(reply[3 * n + 2]), replicated
                )
        # Every request's coupon had its call, and every call its reply: no None is left.
        return cast("list[GateDecision | BaseException]", results)

    def _run_reserve(self, calls: list[tuple[list[str], list[str]]]) -> tuple[list[Any], list[bool]]:
        acks, wait_ms = self.min_replica_acks, self.replica_ack_timeout_ms
        try:
            return run_many_replicated(self.client, "reserve", calls, acks, wait_ms)
        except REDIS_ERRORS as exc:
            if not outcome_unknown(exc):
                raise
            log.warning("gate call timed out (%s); running it once more with the same tokens", exc)
        try:
            return run_many_replicated(self.client, "reserve", calls, acks, wait_ms)
        except REDIS_ERRORS as exc:
            # The first run may have reserved: even a refused second run leaves the outcome unknown.
            raise redis.TimeoutError(f"the gate call's outcome is unknown: {exc}") from exc

    def settle_many(self, mode: HoldMode, holds: list[Hold], cutoff_ms: int = 0) -> list[bool]:
        """Apply one release.lua mode to many holds (one call per coupon, one pipeline); a flag per hold."""
        if not holds:
            return []
        by_coupon: dict[str, list[int]] = {}
        for index, hold in enumerate(holds):
            by_coupon.setdefault(hold.coupon_id, []).append(index)
        calls = [
            (
                keys.hold_keys(coupon_id),
                [mode.value, str(cutoff_ms), *(a for i in indexes for a in (holds[i].user_id, holds[i].event_id))],
            )
            for coupon_id, indexes in by_coupon.items()
        ]
        try:
            replies = run_many(self.client, "release", calls)
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        flags = [False] * len(holds)
        for indexes, reply in zip(by_coupon.values(), replies):
            if isinstance(reply, BaseException):
                raise RedisUnavailable(f"The coupon gate failed: {reply}")
            for n, i in enumerate(indexes):
                flags[i] = bool(int(reply[n]))
        return flags

    def release_many(self, holds: list[Hold]) -> int:
        """Undo reservations whose record was never written; returns how many were undone."""
        return sum(self.settle_many(HoldMode.RELEASE, holds))

    def unconfirmed_before(self, coupon_id: str, cutoff_ms: int, limit: int = 1000) -> list[HeldReservation]:
        """Holds not confirmed and untouched since cutoff_ms: the sweeper's candidates, oldest first."""
        try:
            touched = cast(
                _ScoredMembers,
                self.client.zrangebyscore(
                    keys.unconfirmed(coupon_id), "-inf", cutoff_ms, start=0, num=limit, withscores=True
                ),
            )
            if not touched:
                return []
            users = [_text(u) for u, _ in touched]
            raw = self.client.hmget(keys.holds(coupon_id), users)
            ranks = [self.client.zscore(keys.participants(coupon_id), u) for u in users]
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        out = []
        for user, (_, score), hold, rank in zip(users, touched, raw, ranks):
            state, event = _parse_hold(hold)
            if state is not None and rank is not None:
                out.append(HeldReservation(user, int(rank), state, event, int(score)))
        return out

    def oldest_unconfirmed_ms(self, coupon_id: str) -> int | None:
        """When (Redis ms) the oldest unconfirmed hold was last touched, or None when every hold is confirmed."""
        try:
            oldest = cast(_ScoredMembers, self.client.zrange(keys.unconfirmed(coupon_id), 0, 0, withscores=True))
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        return int(oldest[0][1]) if oldest else None

    def reservations(self, coupon_id: str) -> list[HeldReservation]:
        """Every participant with its hold, for reconcile (one coupon's whole gate state)."""
        try:
            ranks = cast(_ScoredMembers, self.client.zrange(keys.participants(coupon_id), 0, -1, withscores=True))
            raw = self.client.hgetall(keys.holds(coupon_id))
            touched = dict(
                cast(_ScoredMembers, self.client.zrange(keys.unconfirmed(coupon_id), 0, -1, withscores=True))
            )
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        holds = {_text(k): v for k, v in raw.items()}
        stamps = {_text(k): int(v) for k, v in touched.items()}
        out = []
        for member, rank in ranks:
            user = _text(member)
            state, event = _parse_hold(holds.get(user))
            out.append(HeldReservation(user, int(rank), state, event, stamps.get(user)))
        return out

    def update_meta(self, coupon_id: str, meta: GateMeta, *, guard: bool = True) -> MetaUpdateResult:
        """An admin change of the meta in one update_meta.lua call; the caller holds the coupon's DB row lock.

        With `guard`, a total below the reservation counter is refused (BELOW_RESERVED); without it the meta is
        written anyway (the undo of a change whose commit failed). A missing meta is left missing. RedisUnavailable
        when the call fails; after a timeout the caller cannot know whether the meta was written.
        """
        args = ["guard" if guard else "force", str(meta.total), str(meta.starts_ms), str(meta.ends_ms), meta.status]
        try:
            [reply] = run_many(self.client, "update_meta", [(keys.meta_keys(coupon_id), args)])
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        if isinstance(reply, BaseException):
            raise RedisUnavailable(f"The coupon gate failed: {reply}") from reply
        return MetaUpdateResult(MetaUpdate(int(reply[0])), int(reply[1]))

    def read_meta(self, coupon_id: str) -> GateMeta | None:
        """The meta as reserve.lua sees it, or None when it is missing."""
        try:
            raw = self.client.hgetall(keys.meta(coupon_id))
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        if not raw:
            return None
        fields = {_text(k): _text(v) for k, v in raw.items()}
        return GateMeta(int(fields["total"]), int(fields["starts"]), int(fields["ends"]), fields["status"])

    def write_meta(self, coupon_id: str, meta: GateMeta) -> None:
        """A raw HSET of the meta, outside the row lock: for the benches' synthetic coupons that have no DB row."""
        try:
            self.client.hset(keys.meta(coupon_id), mapping=_meta_fields(meta))
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc

    def reserved(self, coupon_id: str) -> int:
        try:
            value = self.client.get(keys.issued(coupon_id))
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        return int(value or 0)

    def reserved_many(self, coupon_ids: list[str]) -> list[int | None]:
        """The reservation counter of each coupon in one pipeline, None where the meta is missing (rebuild it)."""
        if not coupon_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for coupon_id in coupon_ids:
            pipe.exists(keys.meta(coupon_id))
            pipe.get(keys.issued(coupon_id))
        try:
            replies = pipe.execute()
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        return [int(replies[2 * i + 1] or 0) if replies[2 * i] else None for i in range(len(coupon_ids))]

    def rank_of(self, coupon_id: str, user_id: str) -> int | None:
        try:
            score = self.client.zscore(keys.participants(coupon_id), user_id)
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        return None if score is None else int(score)

    def participant_count(self, coupon_id: str) -> int:
        try:
            return int(self.client.zcard(keys.participants(coupon_id)))
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc

    def has_meta(self, coupon_id: str) -> bool:
        return bool(self.client.exists(keys.meta(coupon_id)))

    def try_lock_rebuild(self, coupon_id: str, token: str) -> bool:
        return bool(self.client.set(keys.rebuild_lock(coupon_id), token, nx=True, px=REBUILD_LOCK_MS))

    def unlock_rebuild(self, coupon_id: str, token: str) -> None:
        self._unlock(keys=[keys.rebuild_lock(coupon_id)], args=[token])

    def wait_for_meta(self, coupon_id: str, timeout: float = REBUILD_WAIT_S) -> bool:
        """Another process is rebuilding: wait (cooperatively) until the meta appears."""
        deadline = time.monotonic() + timeout
        delay = 0.01
        while time.monotonic() < deadline:
            if self.has_meta(coupon_id):
                return True
            time.sleep(delay)
            delay = min(delay * 2, 0.2)
        return False

    def mark_lost(self, coupon_id: str, keep_ms: int) -> LossMark | None:
        """Record (once) that the gate is missing; None when its meta exists after all (decide again)."""
        try:
            [reply] = run_many(self.client, "mark_lost", [(keys.loss_keys(coupon_id), [str(keep_ms)])])
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        if isinstance(reply, BaseException):
            raise RedisUnavailable(f"The coupon gate failed: {reply}") from reply
        lost_at, now = int(reply[0]), int(reply[1])
        return None if lost_at < 0 else LossMark(lost_at, now)

    def open_holds(self, coupon_id: str) -> int:
        """Reservations not confirmed yet (published, or being settled): a gate with any is still in use."""
        try:
            return int(self.client.zcard(keys.unconfirmed(coupon_id)))
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc

    def install(self, coupon_id: str, snapshot: GateSnapshot) -> None:
        """Replace the gate's state with a snapshot; meta is written last so readers never see half."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(
            keys.meta(coupon_id),
            keys.participants(coupon_id),
            keys.holds(coupon_id),
            keys.unconfirmed(coupon_id),
            keys.lost(coupon_id),
        )
        pipe.set(keys.issued(coupon_id), len(snapshot.participants))
        items = list(snapshot.participants.items())
        for start in range(0, len(items), _CHUNK):
            pipe.zadd(keys.participants(coupon_id), dict(items[start : start + _CHUNK]))
        pipe.hset(keys.meta(coupon_id), mapping=_meta_fields(snapshot.meta))
        pipe.execute()

    def forget(self, coupon_ids: Iterable[str]) -> None:
        """Delete every key of each coupon's gate state (a retired sale, a failed creation, an operator rebuild)."""
        for coupon_id in coupon_ids:
            try:
                self.client.delete(*keys.state_keys(coupon_id))
            except REDIS_ERRORS as exc:
                raise RedisUnavailable() from exc


def _meta_fields(meta: GateMeta) -> dict[FieldT, EncodableT]:
    return {"total": meta.total, "starts": meta.starts_ms, "ends": meta.ends_ms, "status": meta.status}
