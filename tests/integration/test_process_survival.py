"""rqscheduler, the rq worker and the schedule watcher outlive a frozen or restarted Redis (the real one)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import redis
from rq.job import Job
from rq.registry import FailedJobRegistry
from rq.worker import Worker as RqWorker
from sqlalchemy.engine import make_url

from harness.processes import Proc, Stack, wait_for
from harness.services import forget_redis_data, services
from harness.services import pid_file as service_pid_file
from tests.integration.conftest import TEST_DB_URL, TEST_REDIS_URL
from workers.jobs import QUEUE
from workers.schedule import JOB_ID

# Fault injection and end-to-end runs: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow


def _own_redis_pid() -> int:
    """The pid of the Redis at TEST_REDIS_URL, provided this checkout's scripts/services.sh started it.

    Freezing or stopping a Redis someone else uses (another checkout, a `make run`) would break their work,
    so anything else is an error, not a skip: CI's `make test` always starts its own.
    """
    pid_file = service_pid_file("redis")
    how = (
        f"Start it from this checkout: REDIS_PORT={urlparse(TEST_REDIS_URL).port} scripts/services.sh up "
        f"(or run `make test`), and point TEST_REDIS_URL at it."
    )
    if not pid_file.exists():
        pytest.fail(
            f"{pid_file} is missing: the Redis at {TEST_REDIS_URL} was not started by this checkout's "
            f"scripts/services.sh, and these tests freeze and restart it. {how}",
            pytrace=False,
        )
    pid = int(pid_file.read_text().strip())
    served_by = int(redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=5).info("server")["process_id"])
    if served_by != pid:
        pytest.fail(
            f"the Redis at {TEST_REDIS_URL} is pid {served_by}, but this checkout's scripts/services.sh "
            f"started pid {pid} ({pid_file}); refusing to freeze a Redis this checkout does not own. {how}",
            pytrace=False,
        )
    return pid


@contextmanager
def _frozen(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _services(*args: str) -> None:
    env = dict(os.environ, REDIS_PORT=str(urlparse(TEST_REDIS_URL).port), DB_PORT=str(make_url(TEST_DB_URL).port))
    services(*args, env=env, timeout=120)


@pytest.fixture
def survival_env(base_env: dict[str, str], migrated_db: str) -> dict[str, str]:
    return dict(base_env, REPUBLISH_INTERVAL_SECONDS="1")


@pytest.fixture
def rq_redis() -> redis.Redis:
    # rq's own objects want a bytes client; a short timeout so a poll during an outage fails fast.
    return redis.Redis.from_url(TEST_REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _last_run(conn: redis.Redis) -> float:
    """When the periodic job last finished (epoch seconds), 0 if it never has (or Redis lost it)."""
    try:
        job = Job.fetch(JOB_ID, connection=conn)
    except Exception:
        return 0.0
    return job.ended_at.timestamp() if job.ended_at and job.get_status() == "finished" else 0.0


def _machinery(stack: Stack, conn: redis.Redis) -> dict[str, Proc]:
    scheduler, worker = stack.start_retry_machinery()
    procs = {"rqscheduler": scheduler, "rq worker": worker, "schedule watcher": stack.start_schedule_watcher()}
    wait_for(lambda: _last_run(conn), 60, "a first run of the periodic job")
    return procs


def _assert_alive(procs: dict[str, Proc]) -> None:
    dead = {name: p.log()[-3000:] for name, p in procs.items() if not p.alive()}
    assert not dead, f"exited: {list(dead)}\n" + "\n".join(f"--- {n}\n{log}" for n, log in dead.items())


def _report(capsys: Any, case: str, seconds: float) -> None:
    with capsys.disabled():
        print(f"\n[process survival] {case}: periodic job ran again {seconds:.2f}s after it came back")


@pytest.mark.parametrize("stall_seconds", [4, 7])
def test_a_frozen_redis_kills_nothing_and_the_job_runs_again(
    survival_env: dict[str, str], tmp_path: Path, rq_redis: redis.Redis, capsys: Any, stall_seconds: int
) -> None:
    pid = _own_redis_pid()
    stack = Stack(survival_env, tmp_path)
    try:
        procs = _machinery(stack, rq_redis)
        with _frozen(pid):
            time.sleep(stall_seconds)  # the stall itself: nothing to wait for
        thawed = time.time()
        last = wait_for(
            lambda: _last_run(rq_redis) > thawed and _last_run(rq_redis),
            60,
            "a run of the periodic job after the stall",
        )
        _report(capsys, f"SIGSTOP {stall_seconds}s", float(last) - thawed)
        _assert_alive(procs)
        if stall_seconds > 5:
            # Past the scheduler's 5 s socket timeout: the stall was seen as one, logged, and ridden out.
            log = procs["rqscheduler"].log()
            assert "Redis unavailable (TimeoutError" in log and "scheduling resumed" in log, log[-3000:]
    finally:
        stack.stop()


def test_a_restarted_empty_redis_kills_nothing_and_the_job_is_registered_again(
    survival_env: dict[str, str], tmp_path: Path, rq_redis: redis.Redis, capsys: Any
) -> None:
    _own_redis_pid()
    stack = Stack(survival_env, tmp_path)
    try:
        procs = _machinery(stack, rq_redis)
        _services("stop", "redis")
        forget_redis_data()
        try:
            time.sleep(5)  # the outage itself
        finally:
            _services("start", "redis")
        back = time.time()
        last = wait_for(
            lambda: _last_run(rq_redis) > back and _last_run(rq_redis),
            60,
            "a run of the periodic job after the restart",
        )
        _report(capsys, "Redis stopped 5s, restarted empty", float(last) - back)
        _assert_alive(procs)
        watcher = procs["schedule watcher"].log()
        assert f"periodic job {JOB_ID} every 1s: created" in watcher, watcher[-3000:]
        assert "cannot reach Redis to check the schedule" in watcher, watcher[-3000:]
        for name in ("rqscheduler", "rq worker"):
            assert "Redis unavailable" in procs[name].log() or "could not connect" in procs[name].log(), name
        # Both registered themselves again in the empty Redis, so rq-dashboard and `rq info` still see them.
        wait_for(lambda: len(RqWorker.all(connection=rq_redis)) == 1, 30, "the rq worker registered again")
        wait_for(lambda: rq_redis.keys("rq:scheduler_instance:*"), 30, "rqscheduler registered again")
    finally:
        stack.stop()


def test_the_job_failing_on_a_db_outage_fails_only_that_run(
    survival_env: dict[str, str], tmp_path: Path, rq_redis: redis.Redis, capsys: Any
) -> None:
    stack = Stack(survival_env, tmp_path)
    failed = FailedJobRegistry(QUEUE, connection=rq_redis)
    try:
        procs = _machinery(stack, rq_redis)
        _services("stop", "mariadb")
        try:
            # rq marks the run failed (the job raised on the DB); that is all an outage may cost.
            wait_for(lambda: JOB_ID in failed.get_job_ids(), 60, "a run of the job failed on the DB outage")
        finally:
            _services("start", "mariadb")
        back = time.time()
        last = wait_for(
            lambda: _last_run(rq_redis) > back and _last_run(rq_redis),
            60,
            "a successful run of the periodic job after the DB came back",
        )
        _report(capsys, "MariaDB stopped, periodic job failing", float(last) - back)
        _assert_alive(procs)
    finally:
        stack.stop()
