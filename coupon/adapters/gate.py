"""The Redis issue gate: typed wrappers around reserve.lua / release.lua and the gate's metadata."""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Iterable

import redis

from coupon.adapters import keys
from coupon.adapters.lua import run_many, source
from coupon.adapters.redis_client import RedisClient
from coupon.errors import RedisUnavailable
from coupon.telemetry import GATE_BATCH, GATE_LATENCY

REBUILD_LOCK_MS = 10_000
REBUILD_WAIT_S = 5.0
_CHUNK = 1000


class GateOutcome(enum.Enum):
    """What reserve.lua decided; the values are the script's return codes."""

    ACCEPTED = 0
    DUPLICATE = 1
    SOLD_OUT = 2
    NOT_STARTED = 3
    ENDED = 4
    DISABLED = 5
    NEEDS_REBUILD = 6


@dataclass(frozen=True)
class GateDecision:
    outcome: GateOutcome
    rank: int


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


REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterDownError)


class Gate:
    """One object per process; safe to share between greenlets (the client pools connections)."""

    def __init__(self, client: RedisClient, timeout_s: float = 5.0) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._release = client.register_script(source("release"))
        self._unlock = client.register_script(source("unlock"))

    def reserve(self, coupon_id: str, user_id: str) -> GateDecision:
        """One request on its own (CLI, tests); the API decides its concurrent requests with reserve_many."""
        result = self.reserve_many([(coupon_id, user_id)])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def reserve_many(self, requests: list[tuple[str, str]]) -> list[GateDecision | BaseException]:
        """Decide many requests: one reserve.lua call per coupon, all calls in one pipeline; results in order."""
        by_coupon: dict[str, list[int]] = {}
        for index, (coupon_id, _) in enumerate(requests):
            by_coupon.setdefault(coupon_id, []).append(index)
        GATE_BATCH.observe(len(requests))
        started = time.perf_counter()
        calls = [(keys.gate_keys(coupon_id), [requests[i][1] for i in indexes]) for coupon_id, indexes in by_coupon.items()]
        try:
            replies = run_many(self.client, "reserve", calls)
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        GATE_LATENCY.observe(time.perf_counter() - started)
        results: list[GateDecision | BaseException] = [RedisUnavailable()] * len(requests)
        for indexes, reply in zip(by_coupon.values(), replies):
            if isinstance(reply, BaseException):
                for i in indexes:
                    results[i] = RedisUnavailable(f"The coupon gate failed: {reply}")
                continue
            for n, i in enumerate(indexes):
                results[i] = GateDecision(GateOutcome(int(reply[2 * n])), int(reply[2 * n + 1]))
        return results

    def release(self, coupon_id: str, user_id: str) -> bool:
        released = self._release(keys=[keys.issued(coupon_id), keys.participants(coupon_id)], args=[user_id])
        return bool(released)

    def release_many(self, pairs: list[tuple[str, str]]) -> int:
        """Undo the reservations of a batch whose publish failed, in one pipeline; returns how many were held."""
        calls = [([keys.issued(coupon_id), keys.participants(coupon_id)], [user_id]) for coupon_id, user_id in pairs]
        try:
            replies = run_many(self.client, "release", calls)
        except REDIS_ERRORS as exc:
            raise RedisUnavailable() from exc
        for reply in replies:
            if isinstance(reply, BaseException):
                raise RedisUnavailable(f"The coupon gate failed: {reply}")
        return sum(int(r) for r in replies)

    def write_meta(self, coupon_id: str, meta: GateMeta) -> None:
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

    def install(self, coupon_id: str, snapshot: GateSnapshot) -> None:
        """Replace the gate's state with a snapshot; meta is written last so readers never see half."""
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(keys.meta(coupon_id), keys.participants(coupon_id))
        pipe.set(keys.issued(coupon_id), len(snapshot.participants))
        items = list(snapshot.participants.items())
        for start in range(0, len(items), _CHUNK):
            pipe.zadd(keys.participants(coupon_id), dict(items[start : start + _CHUNK]))
        pipe.hset(keys.meta(coupon_id), mapping=_meta_fields(snapshot.meta))
        pipe.execute()

    def forget(self, coupon_ids: Iterable[str]) -> None:
        for coupon_id in coupon_ids:
            self.client.delete(*keys.gate_keys(coupon_id))


def _meta_fields(meta: GateMeta) -> dict[str, str | int]:
    return {"total": meta.total, "starts": meta.starts_ms, "ends": meta.ends_ms, "status": meta.status}
