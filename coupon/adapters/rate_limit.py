"""Redis rate limiter: per-user (or per-admin) and per-address request windows, deleted-account and revoked-token
markers, login attempts."""

from __future__ import annotations

import enum
import hashlib
import logging
import time
from dataclasses import dataclass

from coupon.adapters import keys
from coupon.adapters.coalescer import Coalescer
from coupon.adapters.lua import run_grouped
from coupon.adapters.redis_client import REDIS_ERRORS, RedisClient
from coupon.observability.instruments import ADMISSION_REFUSED

log = logging.getLogger(__name__)

# A dead Redis is logged at most this often per process (a flood would otherwise flood the log too).
_WARN_EVERY_S = 10.0


class LimitOutcome(enum.Enum):
    """What rate_limit.lua decided; the values are the script's return codes."""

    ALLOWED = 0
    LIMITED = 1
    ACCOUNT_DELETED = 2
    TOKEN_REVOKED = 3


@dataclass(frozen=True)
class Limit:
    """`requests` per `window_s` seconds; 0 requests switches the limit off."""

    requests: int
    window_s: int

    @property
    def enabled(self) -> bool:
        return self.requests > 0 and self.window_s > 0


@dataclass(frozen=True)
class LimitDecision:
    outcome: LimitOutcome
    retry_after_s: float = 0.0


ALLOWED = LimitDecision(LimitOutcome.ALLOWED)
# Resolved once: a labels() lookup per refusal would cost the most exactly when a flood is being refused.
_REFUSED = {
    LimitOutcome.LIMITED: ADMISSION_REFUSED.labels("rate_limited"),
    LimitOutcome.ACCOUNT_DELETED: ADMISSION_REFUSED.labels("account_deleted"),
    LimitOutcome.TOKEN_REVOKED: ADMISSION_REFUSED.labels("token_revoked"),
}


def _decision(reply: list[int]) -> LimitDecision:
    """One group's {code, retry_after_ms} from rate_limit.lua; allowed (the common case) costs no object."""
    code = int(reply[0])
    if code == 0:
        return ALLOWED
    return LimitDecision(LimitOutcome(code), int(reply[1]) / 1000.0)


@dataclass(frozen=True)
class Admission:
    """One request to admit: the authenticated user (or None), the client address (or None), the access token's
    jti (checked against its revocation marker) and whether the token is an admin's (the admin limit applies)."""

    user_id: str | None
    address: str | None
    jti: str | None = None
    admin: bool = False


def username_digest(username: str) -> str:
    # Usernames are compared case-insensitively by the DB; hashed so no raw name (or brace) lands in a key.
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]


class RateLimiter:
    """One per process. Fails open: with Redis down, requests pass (the gate itself then answers 503)."""

    def __init__(
        self,
        client: RedisClient,
        user: Limit,
        address: Limit,
        login: Limit,
        deleted_marker_ttl_s: int,
        timeout_s: float = 2.0,
        admin: Limit | None = None,
    ) -> None:
        self.client = client
        self.user, self.address, self.login = user, address, login
        # Admins poll live sales from dashboards: their own budget. Without one they count like users.
        self.admin = user if admin is None else admin
        self.deleted_marker_ttl_s = deleted_marker_ttl_s
        self.timeout_s = timeout_s
        self._last_warning = 0.0
        # Concurrent admissions of a worker share one pipeline, exactly like Gate.reserve.
        self._batched: Coalescer[Admission, LimitDecision] = Coalescer(self.admit_many, max_batch=512)

    def admit(
        self, user_id: str | None, address: str | None, jti: str | None = None, admin: bool = False
    ) -> LimitDecision:
        """ALLOWED, LIMITED (with retry-after), ACCOUNT_DELETED or TOKEN_REVOKED; one shared round trip at most."""
        if user_id is None and (address is None or not self.address.enabled):
            return ALLOWED
        try:
            return self._batched.submit(
                Admission(user_id, address, jti, admin), queue_timeout=self.timeout_s, flush_timeout=self.timeout_s
            )
        except REDIS_ERRORS as exc:
            self._warn(exc)
            return ALLOWED

    def admit_many(self, items: list[Admission]) -> list[LimitDecision]:
        """Decide many admissions at once: rate_limit.lua groups for every user and address, as few script calls
        as the cluster slots allow (one on a single Redis). Never raises: a Redis failure lets the items pass."""
        groups: list[tuple[list[str], list[int]]] = []
        owners: list[int] = []
        user_args, admin_args = self._args(self.user), self._args(self.admin)
        address_args = self._args(self.address)
        for index, item in enumerate(items):
            if item.user_id is not None:
                deleted = keys.user_deleted(item.user_id)
                # The revoked-token marker rides in the same group (same hash tag): logout costs no round trip.
                revoked = keys.token_revoked(item.user_id, item.jti) if item.jti else deleted
                groups.append(([keys.rl_user(item.user_id), deleted, revoked], admin_args if item.admin else user_args))
                owners.append(index)
            if item.address is not None and self.address.enabled:
                blocked = keys.address_blocked(item.address)
                groups.append(([keys.rl_address(item.address), blocked, blocked], address_args))
                owners.append(index)
        try:
            replies = run_grouped(self.client, "rate_limit", groups)
        except REDIS_ERRORS as exc:
            self._warn(exc)
            return [ALLOWED] * len(items)
        results: list[LimitDecision] = [ALLOWED] * len(items)
        for index, reply in zip(owners, replies):
            if isinstance(reply, BaseException):
                self._warn(reply)  # fail open for this call only
                continue
            decision = _decision(reply)
            if decision is ALLOWED:
                continue
            current = results[index]
            # The worst verdict wins: revoked and deleted beat limited beats allowed; the longest wait is reported.
            if decision.outcome.value > current.outcome.value or (
                decision.outcome is current.outcome and decision.retry_after_s > current.retry_after_s
            ):
                results[index] = decision
        for decision in results:
            if decision is not ALLOWED:
                _REFUSED[decision.outcome].inc()
        return results

    def take_login_attempt(self, username: str) -> LimitDecision:
        """Count one login attempt of a username (before the password is checked, so parallel guesses count)."""
        if not self.login.enabled:
            return ALLOWED
        digest = username_digest(username)
        blocked = keys.login_blocked(digest)
        try:
            [reply] = run_grouped(
                self.client, "rate_limit", [([keys.rl_login(digest), blocked, blocked], self._args(self.login))]
            )
        except REDIS_ERRORS as exc:
            self._warn(exc)
            return ALLOWED
        if isinstance(reply, BaseException):
            self._warn(reply)
            return ALLOWED
        return _decision(reply)

    @staticmethod
    def _args(limit: Limit) -> list[int]:
        return [limit.requests if limit.enabled else 0, limit.window_s * 1000]

    def clear_login_attempts(self, username: str) -> None:
        """A successful login forgets the username's failed attempts."""
        if not self.login.enabled:
            return
        try:
            self.client.delete(keys.rl_login(username_digest(username)))
        except REDIS_ERRORS as exc:
            self._warn(exc)

    def mark_deleted(self, user_id: str) -> None:
        """Refuse the user's tokens from now on; the marker outlives every token minted before it."""
        self.client.set(keys.user_deleted(user_id), "1", ex=self.deleted_marker_ttl_s)

    def revoke_token(self, user_id: str, jti: str, ttl_s: int) -> None:
        """Refuse one access token from now on; the marker lives as long as the token could (at least 1 s)."""
        self.client.set(keys.token_revoked(user_id, jti), "1", ex=max(1, ttl_s))

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARN_EVERY_S:
            self._last_warning = now
            log.warning("rate limiter: Redis unavailable, letting requests through: %s", type(exc).__name__)
