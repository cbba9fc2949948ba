"""Unit tests for login hardening: unknown names cost a full slow hash, the attempt limit comes first."""

from __future__ import annotations

from typing import Any

import pytest

from coupon.adapters.hasher import PasswordHasher
from coupon.adapters.rate_limit import ALLOWED, LimitDecision, LimitOutcome
from coupon.domain.errors import BadCredentials, HashingBusy, RateLimited
from coupon.http.parsing import Credentials
from coupon.services import accounts


class NoUsers:
    """A session whose user lookup finds nobody."""

    def execute(self, *_: Any, **__: Any) -> Any:
        class _R:
            def scalar_one_or_none(self) -> None:
                return None

        return _R()


class Attempts:
    def __init__(self, decision: LimitDecision) -> None:
        self.decision, self.taken, self.cleared = decision, [], []

    def take_login_attempt(self, username: str) -> LimitDecision:
        self.taken.append(username)
        return self.decision

    def clear_login_attempts(self, username: str) -> None:
        self.cleared.append(username)


class RecordingHasher(PasswordHasher):
    """The real hasher, inline, recording which stored hashes it checked."""

    def __init__(self, max_queue: int = 8) -> None:
        super().__init__(threads=1, max_queue=max_queue, threaded=False)
        self.checked: list[str] = []

    def _run(self, fn: Any, *args: Any) -> Any:
        if len(args) == 2:
            self.checked.append(args[0])
        return super()._run(fn, *args)


def _params(stored: str) -> str:
    return stored.split("$", 1)[0]  # "scrypt:32768:8:1": method and cost, before salt and hash


def test_the_dummy_hash_costs_as_much_as_a_real_one() -> None:
    assert _params(accounts._dummy_hash()) == _params(accounts.hash_password("any-password"))
    assert _params(accounts._dummy_hash()).startswith("scrypt:")


def test_an_unknown_username_still_checks_a_password_hash() -> None:
    hasher = RecordingHasher()
    with pytest.raises(BadCredentials):
        accounts.login(NoUsers(), hasher, Credentials("nobody", "guess-123"), mint=lambda u: ("t", 1))  # type: ignore[arg-type]
    assert hasher.checked == [accounts._dummy_hash()]
    assert hasher.admitted == 0  # the slot is given back on the error path too


def test_over_the_attempt_limit_no_hash_is_computed() -> None:
    hasher = RecordingHasher()
    attempts = Attempts(LimitDecision(LimitOutcome.LIMITED, 42.3))
    with pytest.raises(RateLimited) as err:
        accounts.login(NoUsers(), hasher, Credentials("victim", "guess"), lambda u: ("t", 1), attempts)  # type: ignore[arg-type]
    assert err.value.retry_after == 43 and err.value.code == "E429" and attempts.taken == ["victim"]
    assert hasher.checked == []


def test_a_failed_login_keeps_its_attempt_counted() -> None:
    attempts = Attempts(ALLOWED)
    with pytest.raises(BadCredentials):
        accounts.login(NoUsers(), RecordingHasher(), Credentials("nobody", "guess"), lambda u: ("t", 1), attempts)  # type: ignore[arg-type]
    assert attempts.taken == ["nobody"] and attempts.cleared == []


def test_a_login_refused_as_busy_costs_no_attempt_and_no_hash() -> None:
    hasher = RecordingHasher(max_queue=1)
    attempts = Attempts(ALLOWED)
    with hasher.slot(), pytest.raises(HashingBusy) as err:  # another request holds the only slot
        accounts.login(NoUsers(), hasher, Credentials("rushed", "guess"), lambda u: ("t", 1), attempts)  # type: ignore[arg-type]
    assert (err.value.status, err.value.code) == (503, "E5035") and err.value.retry_after >= 1
    assert attempts.taken == [] and hasher.checked == []
