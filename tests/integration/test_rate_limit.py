"""Rate limits on real Redis and over real HTTP: per user, per address, login attempts; a flood of one user
starves nobody else, and a limited request never reaches the gate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from coupon.adapters import keys
from coupon.adapters.rate_limit import Admission, Limit, LimitOutcome, RateLimiter, username_digest
from coupon.adapters.redis_client import build_redis
from harness.client import Api, burst
from harness.invariants import check_invariants, wait_drained
from harness.processes import Stack, free_port
from tests.integration.conftest import TEST_REDIS_URL

OFF = Limit(0, 10)


def _limiter(user: Limit = OFF, address: Limit = OFF, login: Limit = OFF, url: str = TEST_REDIS_URL) -> RateLimiter:
    return RateLimiter(build_redis(url), user=user, address=address, login=login, deleted_marker_ttl_s=60)


def test_user_window_allows_exactly_the_limit_then_tells_how_long_to_wait(rdb: redis.Redis) -> None:
    limiter = _limiter(user=Limit(3, 30))
    outcomes = [limiter.admit("u-1", None) for _ in range(5)]
    assert [d.outcome for d in outcomes] == [LimitOutcome.ALLOWED] * 3 + [LimitOutcome.LIMITED] * 2
    assert 0 < outcomes[-1].retry_after_s <= 30
    assert limiter.admit("u-2", None).outcome is LimitOutcome.ALLOWED  # another user has its own window
    assert 0 < rdb.pttl(keys.rl_user("u-1")) <= 30_000  # the window expires: no key lives forever


def test_window_resets_after_it_expires(rdb: redis.Redis) -> None:
    limiter = _limiter(user=Limit(1, 1))
    assert limiter.admit("u-1", None).outcome is LimitOutcome.ALLOWED
    assert limiter.admit("u-1", None).outcome is LimitOutcome.LIMITED
    rdb.pexpire(keys.rl_user("u-1"), 1)  # end the window now instead of sleeping through it
    from harness.processes import wait_for

    wait_for(lambda: not rdb.exists(keys.rl_user("u-1")), 5, "the window key to expire")
    assert limiter.admit("u-1", None).outcome is LimitOutcome.ALLOWED


def test_address_limit_counts_per_address_and_can_be_off() -> None:
    limiter = _limiter(address=Limit(2, 30))
    got = [limiter.admit(None, "198.51.100.7").outcome for _ in range(3)]
    assert got == [LimitOutcome.ALLOWED, LimitOutcome.ALLOWED, LimitOutcome.LIMITED]
    assert limiter.admit(None, "198.51.100.8").outcome is LimitOutcome.ALLOWED
    off = _limiter()
    assert all(off.admit(None, "198.51.100.7").outcome is LimitOutcome.ALLOWED for _ in range(10))


def test_the_worst_verdict_of_user_and_address_wins() -> None:
    limiter = _limiter(user=Limit(100, 30), address=Limit(1, 30))
    assert limiter.admit("u-1", "198.51.100.7").outcome is LimitOutcome.ALLOWED
    assert limiter.admit("u-2", "198.51.100.7").outcome is LimitOutcome.LIMITED  # same address, other user


def test_deleted_marker_refuses_the_user_even_with_limits_off() -> None:
    limiter = _limiter()
    assert limiter.admit("u-1", None).outcome is LimitOutcome.ALLOWED
    limiter.mark_deleted("u-1")
    assert limiter.admit("u-1", None).outcome is LimitOutcome.ACCOUNT_DELETED
    assert limiter.admit("u-2", None).outcome is LimitOutcome.ALLOWED


def test_each_group_keeps_its_counter_and_marker_in_one_cluster_hash_slot() -> None:
    from redis.crc import key_slot

    def slot(key: str) -> int:
        return key_slot(key.encode())

    for uid in ("u-1", "0f9995ef-1111-4c1d-9a7b-2c3d4e5f6a7b"):
        assert slot(keys.rl_user(uid)) == slot(keys.user_deleted(uid))
    assert slot(keys.rl_address("198.51.100.7")) == slot(keys.address_blocked("198.51.100.7"))
    assert slot(keys.rl_login("d1g35t")) == slot(keys.login_blocked("d1g35t"))
    # Different users spread over slots: on a cluster they are separate calls, on their own masters.
    slots = {slot(keys.rl_user(f"user-{i}")) for i in range(50)}
    assert len(slots) > 10


def _evalsha_calls(client) -> int:
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        stats = client.info("commandstats", target_nodes=RedisCluster.PRIMARIES)
        return sum(int(node.get("cmdstat_evalsha", {}).get("calls", 0)) for node in stats.values())
    return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))


@pytest.mark.parametrize("redis_mode", ["standalone", "cluster"], indirect=True)
def test_a_batch_counts_like_one_call_per_request_in_as_few_script_calls_as_slots(gate_client, redis_mode) -> None:
    limiter = RateLimiter(gate_client, user=Limit(2, 30), address=Limit(3, 30), login=OFF, deleted_marker_ttl_s=60)
    limiter.mark_deleted("u-gone")
    items = [
        Admission("u-1", None),
        Admission("u-1", None),
        Admission("u-1", None),
        Admission("u-2", None),
        Admission("u-gone", None),
        Admission("u-3", "198.51.100.7"),
        Admission("u-4", "198.51.100.7"),
        Admission("u-5", "198.51.100.7"),
        Admission("u-6", "198.51.100.7"),
    ]
    limiter.admit_many([Admission("warm-up", None)])  # loads the script where it is missing
    before = _evalsha_calls(gate_client)
    got = [d.outcome for d in limiter.admit_many(items)]
    calls = _evalsha_calls(gate_client) - before
    A, L, D = LimitOutcome.ALLOWED, LimitOutcome.LIMITED, LimitOutcome.ACCOUNT_DELETED
    # In order, as if one at a time: u-1's third request is over its 2; the address allows three of four.
    assert got == [A, A, L, A, D, A, A, A, L]
    groups = 13  # nine user groups and four address groups
    if redis_mode == "standalone":
        assert calls == 1
    else:
        from redis.crc import key_slot

        group_keys = [keys.rl_user(i.user_id) for i in items] + [keys.rl_address("198.51.100.7")]
        assert calls == len({key_slot(k.encode()) for k in group_keys}) < groups


def test_login_attempts_per_username_case_insensitive_and_cleared_on_success(rdb: redis.Redis) -> None:
    limiter = _limiter(login=Limit(3, 60))
    got = [limiter.take_login_attempt(name).outcome for name in ("Alice", "alice", "ALICE", "alice")]
    assert got == [LimitOutcome.ALLOWED] * 3 + [LimitOutcome.LIMITED]
    assert limiter.take_login_attempt("bob").outcome is LimitOutcome.ALLOWED
    assert not any("alice" in k.lower() for k in rdb.keys("rl:*"))  # names are hashed, not stored
    limiter.clear_login_attempts("alice")
    assert not rdb.exists(keys.rl_login(username_digest("alice")))
    assert limiter.take_login_attempt("alice").outcome is LimitOutcome.ALLOWED


def test_redis_down_fails_open_without_raising() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    limiter = _limiter(user=Limit(1, 30), address=Limit(1, 30), login=Limit(1, 30), url=dead)
    for _ in range(3):
        assert limiter.admit("u-1", "198.51.100.7").outcome is LimitOutcome.ALLOWED
        assert limiter.take_login_attempt("alice").outcome is LimitOutcome.ALLOWED
    limiter.clear_login_attempts("alice")


# --- over real HTTP -----------------------------------------------------------------------------------------
@pytest.fixture
def start(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., tuple[Api, Stack]]]:
    stacks: list[Stack] = []

    def _start(consumer: bool = False, **env: str) -> tuple[Api, Stack]:
        log_dir = tmp_path / f"s{len(stacks)}"
        log_dir.mkdir()
        stack = Stack(dict(pipeline_env, **env), log_dir)
        stacks.append(stack)
        api = Api(stack.start_api())
        if consumer:
            stack.start_consumer()
        return api, stack

    yield _start
    for stack in stacks:
        stack.stop()


def _code(resp) -> str | None:
    return (resp.json().get("errorMessage") or {}).get("code")


def test_over_the_limit_is_429_with_retry_after_and_the_gate_is_never_called(
    start, admin_token: str, mint, rdb: redis.Redis
) -> None:
    api, _ = start(RATE_LIMIT_USER_REQUESTS="3", RATE_LIMIT_USER_WINDOW_SECONDS="60")
    coupon = api.create_coupon(admin_token, 10)
    [(user_id, token)] = mint(1)
    for _ in range(3):  # spend the window on reads
        assert api.call("GET", "/api/coupon/owned-coupons", token).status_code == 200
    resp = api.call("POST", f"/api/coupon/{coupon['id']}/issue", token)
    assert resp.status_code == 429 and _code(resp) == "E429", resp.text
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Nothing reserved: the request never reached the gate.
    assert rdb.zscore(keys.participants(coupon["id"]), user_id) is None
    assert int(rdb.get(keys.issued(coupon["id"])) or 0) == 0
    [(_, other)] = mint(1)
    assert api.call("POST", f"/api/coupon/{coupon['id']}/issue", other).status_code == 202


@pytest.mark.slow
def test_one_users_flood_does_not_starve_the_others(start, admin_token: str, mint, engine, rdb) -> None:
    api, _ = start(consumer=True, RATE_LIMIT_USER_REQUESTS="5", RATE_LIMIT_USER_WINDOW_SECONDS="60")
    coupon = api.create_coupon(admin_token, 150)
    [(flooder, flood_token)] = mint(1)
    others = mint(200)
    path = f"/api/coupon/{coupon['id']}/issue"
    # 600 flood requests and 200 honest ones, interleaved, all fired at once over real HTTP.
    reqs: list[tuple[str, str, str | None]] = []
    owner: list[str] = []
    for i in range(800):
        if i % 4 == 3:
            uid, tok = others[i // 4]
            reqs.append(("POST", path, tok))
            owner.append(uid)
        else:
            reqs.append(("POST", path, flood_token))
            owner.append(flooder)
    results = burst(api.base, reqs)
    flood = Counter((r[0], r[1]) for r, o in zip(results, owner) if o == flooder)
    honest = Counter((r[0], r[1]) for r, o in zip(results, owner) if o != flooder)
    # The flooder gets at most its window's worth of real answers (one 202 at most), the rest 429.
    assert flood[(429, "E429")] >= 595, flood
    assert sum(n for (status, _), n in flood.items() if status != 429) <= 5, flood
    assert flood[(202, None)] <= 1
    # Every other user is answered normally: 202 while stock lasts, then 409 sold out; never 429 or 5xx.
    assert set(honest) <= {(202, None), (409, "E3003")}, honest
    assert sum(honest.values()) == 200
    accepted = [o for r, o in zip(results, owner) if r[0] == 202]
    assert len(accepted) == min(150, 200 + flood[(202, None)])
    # The refusals are visible to operators (summed over both gunicorn workers).
    import requests

    metrics = requests.get(api.base + "/metrics", timeout=10).text
    line = next(
        x for x in metrics.splitlines() if x.startswith('coupon_admission_refused_total{reason="rate_limited"}')
    )
    assert float(line.split()[-1]) == flood[(429, "E429")]
    wait_drained(engine, coupon["id"], len(accepted))
    check_invariants(engine, rdb, coupon["id"], accepted)


@pytest.mark.slow
def test_address_limit_uses_forwarded_for_only_from_a_trusted_proxy(start) -> None:
    trusted, _ = start(
        RATE_LIMIT_ADDRESS_REQUESTS="3", RATE_LIMIT_ADDRESS_WINDOW_SECONDS="60", TRUSTED_PROXIES="127.0.0.1"
    )

    def hit(api: Api, xff: str) -> int:
        return api.call("GET", "/api/openapi.json", headers={"X-Forwarded-For": xff}).status_code

    assert [hit(trusted, "198.51.100.7") for _ in range(4)] == [200, 200, 200, 429]
    assert hit(trusted, "198.51.100.8") == 200  # another client behind the same proxy
    direct, _ = start(RATE_LIMIT_ADDRESS_REQUESTS="3", RATE_LIMIT_ADDRESS_WINDOW_SECONDS="60")
    # Without a trusted proxy the header is the client's own claim: changing it buys nothing.
    got = [hit(direct, f"198.51.100.{i}") for i in range(5)]
    assert got == [200, 200, 200, 429, 429]
    resp = direct.call("POST", "/api/auth/login", json={"username": "x", "password": "y"})
    assert resp.status_code == 429 and _code(resp) == "E429" and "Retry-After" in resp.headers
    assert direct.call("GET", "/health").status_code == 200  # health checks are never limited


def test_issue_requests_count_against_their_address_inside_the_batch(start, admin_token: str, mint, rdb) -> None:
    api, _ = start(RATE_LIMIT_ADDRESS_REQUESTS="3", RATE_LIMIT_ADDRESS_WINDOW_SECONDS="60", TRUSTED_PROXIES="127.0.0.1")
    coupon = api.create_coupon(admin_token, 10)
    path = f"/api/coupon/{coupon['id']}/issue"
    users = mint(5)
    # Four different users behind one client address: the address has room for three.
    got = [api.call("POST", path, token, headers={"X-Forwarded-For": "198.51.100.7"}) for _, token in users[:4]]
    assert [r.status_code for r in got] == [202, 202, 202, 429] and _code(got[3]) == "E429"
    assert 1 <= int(got[3].headers["Retry-After"]) <= 60
    assert rdb.zscore(keys.participants(coupon["id"]), users[3][0]) is None  # refused before the gate
    assert api.call("POST", path, users[4][1], headers={"X-Forwarded-For": "198.51.100.8"}).status_code == 202
    assert rdb.zcard(keys.participants(coupon["id"])) == 4


@pytest.mark.slow
def test_login_brute_force_is_stopped_per_username(start) -> None:
    api, _ = start(LOGIN_MAX_ATTEMPTS="4", LOGIN_ATTEMPT_WINDOW_SECONDS="300")
    api.signup("victim", "the-real-password")
    api.signup("bystander", "another-password")
    wrong = [
        api.call("POST", "/api/auth/login", json={"username": "victim", "password": f"guess-{i}"}) for i in range(4)
    ]
    assert [(r.status_code, _code(r)) for r in wrong] == [(401, "E1005")] * 4
    # Over the limit even the right password is refused unchecked, with a time to come back.
    resp = api.call("POST", "/api/auth/login", json={"username": "VICTIM", "password": "the-real-password"})
    assert resp.status_code == 429 and _code(resp) == "E429", resp.text
    assert 1 <= int(resp.headers["Retry-After"]) <= 300
    assert api.login("bystander", "another-password")  # other accounts are untouched
    # Unknown names are limited the same way (no hint which names exist).
    ghost = [
        api.call("POST", "/api/auth/login", json={"username": "ghost", "password": "x"}).status_code for _ in range(5)
    ]
    assert ghost == [401] * 4 + [429]


def test_successful_login_clears_the_failed_attempts(start) -> None:
    api, _ = start(LOGIN_MAX_ATTEMPTS="3", LOGIN_ATTEMPT_WINDOW_SECONDS="300")
    api.signup("forgetful", "the-real-password")
    for _ in range(2):
        api.call("POST", "/api/auth/login", json={"username": "forgetful", "password": "nope-nope"})
    assert api.login("forgetful", "the-real-password")
    for _ in range(2):
        assert (
            api.call("POST", "/api/auth/login", json={"username": "forgetful", "password": "nope-nope"}).status_code
            == 401
        )


def test_admins_have_their_own_limit_and_users_keep_theirs(start, admin_token: str, mint) -> None:
    api, _ = start(
        RATE_LIMIT_USER_REQUESTS="3",
        RATE_LIMIT_USER_WINDOW_SECONDS="60",
        RATE_LIMIT_ADMIN_REQUESTS="12",
        RATE_LIMIT_ADMIN_WINDOW_SECONDS="60",
    )
    coupon = api.create_coupon(admin_token, 10)  # admin call 1
    # A dashboard polling the live stock: well past the user limit, within the admin's.
    polls = [api.call("GET", f"/api/coupon/{coupon['id']}", admin_token).status_code for _ in range(10)]
    assert polls == [200] * 10
    # The issue route counts admins under their own limit too, inside its batch (call 12).
    assert api.call("POST", f"/api/coupon/{coupon['id']}/issue", admin_token).status_code == 202
    over = api.call("GET", f"/api/coupon/{coupon['id']}", admin_token)
    assert (over.status_code, _code(over)) == (429, "E429") and 1 <= int(over.headers["Retry-After"]) <= 60
    [(_, token)] = mint(1)
    got = [api.call("GET", f"/api/coupon/{coupon['id']}", token).status_code for _ in range(4)]
    assert got == [200, 200, 200, 429]
    issue = api.call("POST", f"/api/coupon/{coupon['id']}/issue", token)
    assert (issue.status_code, _code(issue)) == (429, "E429")


def test_a_revoked_token_is_refused_in_the_limiters_call_even_with_limits_off(rdb: redis.Redis) -> None:
    limiter = _limiter()
    limiter.revoke_token("u-1", "jti-1", 30)
    assert 0 < rdb.ttl(keys.token_revoked("u-1", "jti-1")) <= 30
    verdicts = limiter.admit_many(
        [Admission("u-1", None, "jti-1"), Admission("u-1", None, "jti-2"), Admission("u-1", None)]
    )
    assert [v.outcome for v in verdicts] == [LimitOutcome.TOKEN_REVOKED, LimitOutcome.ALLOWED, LimitOutcome.ALLOWED]
