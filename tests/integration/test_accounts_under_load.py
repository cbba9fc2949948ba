"""Signups and logins under load, over real HTTP against gunicorn: password hashing never stalls the issue path,
a full hashing queue answers 503 E5035 + Retry-After at once, and bulk-minted users can log in."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from harness.client import Api
from harness.processes import ROOT, Stack

# Fault injection and end-to-end runs: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow

RATE, SECONDS, RUSH_CLIENTS = 200, 5, 32
# A worker hashing on its hub (the bug this guards) queues every issue request behind the hashes: its median went to
# 10.4 s here (measured with hashing forced inline). The medians are compared, floored at 200 ms: the suite's other
# workers sharing two cores move the tail (p99 4 s in one CI run) and once the median (0.7 s), hashes off the hub.
FLOOR_MS = 200.0
BOUND = 10


def _code(resp: requests.Response) -> str | None:
    return (resp.json().get("errorMessage") or {}).get("code")


def _openloop(base: str, coupon_id: str, pairs: list[tuple[str, str]], tokens_file: Path) -> dict[str, Any]:
    tokens_file.write_text("".join(f"{u} {t}\n" for u, t in pairs))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.openloop",
            "--base",
            base,
            "--coupon",
            coupon_id,
            "--tokens",
            str(tokens_file),
            "--rate",
            str(RATE),
            "--seconds",
            str(SECONDS),
            "--connections",
            "64",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def test_issue_latency_stays_low_while_clients_sign_up_and_log_in(
    stack: Stack, api: Api, admin_token: str, mint: Callable[[int], list[tuple[str, str]]], tmp_path: Path
) -> None:
    coupon = api.create_coupon(admin_token, 1_000_000)
    pairs = mint(2 * RATE * SECONDS)
    alone = _openloop(api.base, coupon["id"], pairs[: RATE * SECONDS], tmp_path / "alone.txt")

    rush = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.accounts",
            "--base",
            api.base,
            "--clients",
            str(RUSH_CLIENTS),
            "--seconds",
            str(SECONDS + 2),
            "--login",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert rush.stdout is not None and rush.stdout.readline().strip() == "started"
    beside = _openloop(api.base, coupon["id"], pairs[RATE * SECONDS :], tmp_path / "beside.txt")
    out, _ = rush.communicate(timeout=120)
    rushed = json.loads(out.strip().splitlines()[-1])

    assert alone["statuses"] == {"202": RATE * SECONDS} and beside["statuses"] == {"202": RATE * SECONDS}
    # The rush really ran beside the issue requests: accounts were created and logged in meanwhile.
    assert rushed["statuses"].get("signup 201", 0) >= 10 and rushed["statuses"].get("login 200", 0) >= 10, rushed
    assert not any(k.endswith(" 500") for k in rushed["statuses"]), rushed
    assert beside["p50_ms"] <= BOUND * max(alone["p50_ms"], FLOOR_MS), (alone, beside, rushed)


def test_a_full_hashing_queue_answers_503_with_retry_after_never_500(
    pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    # One worker, one hashing thread, room for one job: concurrent signups must overflow it.
    stack = Stack(dict(pipeline_env, HASH_THREADS="1", HASH_MAX_QUEUE="1"), tmp_path)
    try:
        api = Api(stack.start_api(workers=1))

        def signup(i: int) -> requests.Response:
            return requests.post(
                api.base + "/api/users/signup",
                timeout=60,
                json={"username": f"rush-{uuid.uuid4().hex[:8]}-{i}", "password": "password-123"},
            )

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=24) as pool:
            replies = list(pool.map(signup, range(24)))
        elapsed = time.monotonic() - started
        statuses = sorted({r.status_code for r in replies})
        assert set(statuses) <= {201, 503} and 503 in statuses and 201 in statuses, [r.text for r in replies]
        busy = [r for r in replies if r.status_code == 503]
        for resp in busy:
            assert _code(resp) == "E5035", resp.text
            assert int(resp.headers["Retry-After"]) >= 1
        # Refused at once, not after waiting behind the queue: 24 signups through one slot take a second or two.
        assert elapsed < 15, elapsed

        # Once the rush is over, signing up and logging in work again.
        user = api.signup("after-the-rush", "password-123")
        assert user["username"] == "after-the-rush"
        assert api.login("after-the-rush", "password-123")
        unknown = api.call("POST", "/api/auth/login", json={"username": "nobody-here", "password": "password-123"})
        assert (unknown.status_code, _code(unknown)) == (401, "E1005")
    finally:
        stack.stop()


def test_minted_users_are_fast_to_create_and_can_log_in(
    server: Api, mint: Callable[[int], list[tuple[str, str]]], engine: Any
) -> None:
    import sqlalchemy as sa

    started = time.monotonic()
    pairs = mint(3000)
    minted_s = time.monotonic() - started
    # One scrypt hash shared by all of them: 3,000 separate hashes would take minutes.
    assert minted_s < 20, minted_s
    with engine.connect() as conn:
        names = (
            conn.execute(
                sa.text("SELECT username FROM users WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                {"ids": [pairs[0][0], pairs[-1][0]]},
            )
            .scalars()
            .all()
        )
    assert len(names) == 2
    for name in names:
        resp = server.call("POST", "/api/auth/login", json={"username": name, "password": "password-123"})
        assert resp.status_code == 200, resp.text
        assert resp.json()["data"]["username"] == name
        wrong = server.call("POST", "/api/auth/login", json={"username": name, "password": "password-124"})
        assert (wrong.status_code, _code(wrong)) == (401, "E1005")
