"""Integration fixtures: real MariaDB, Redis and Kafka (started by `make test` / scripts/services.sh up).

Every test gets truncated tables and an empty Redis test database; tests that run the pipeline get their
own Kafka topic, consumer group, API server and consumer processes.

Tests parametrized with `redis_mode` = "cluster" (indirectly) run the gate and locks against a real Redis
Cluster (TEST_REDIS_CLUSTER_NODES, started by `make test` / scripts/redis_cluster.sh); every master is
flushed before each such test. RQ always keeps the standalone test Redis: rq does not support Cluster.
"""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa
from redis.cluster import ClusterNode, RedisCluster
from sqlalchemy.engine import make_url

from coupon import create_app
from coupon.adapters import users_repo
from coupon.adapters.kafka_topics import delete_topics, ensure_topics
from coupon.adapters.redis_client import build_redis, cluster_startup
from coupon.domain.vocabulary import Role
from coupon.extensions import db
from coupon.http.minting import mint_token, user_token
from coupon.services import accounts, load_users
from coupon.services.unit_of_work import unit_of_work
from harness.client import Api
from harness.database import recreate_and_migrate
from harness.processes import ROOT, Stack
from harness.services import use_worker_services
from tests.support.cli import overrides
from tests.support.fault_report import FAILOVER_REPORT, FAULT_REPORT

# Before anything below reads the environment: a pytest-xdist worker's own services (scripts/test.sh).
XDIST_WORKER = use_worker_services()

# Defaults follow scripts/services.sh's port variables, so `REDIS_PORT=6382 make test` tests the services it
# started instead of whatever answers on the standard ports.
TEST_DB_URL = os.environ.get(
    "TEST_DATABASE_URL", f"mysql+pymysql://coupon:coupon@127.0.0.1:{os.environ.get('DB_PORT', '3306')}/coupon_test"
)
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:{os.environ.get('REDIS_PORT', '6379')}/1")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}")
TABLES = (
    "issued_coupons",
    "failed_issued_coupons",
    "issue_rejections",
    "issue_cancellations",
    "refresh_tokens",
    "coupon_events",
    "coupons",
    "users",
)
BIG_TABLE_ROWS = 2000
HOW_TO_START = "Start the services with `make services` (scripts/services.sh up), or run `make test`."
TEST_REDIS_CLUSTER_NODES = os.environ.get("TEST_REDIS_CLUSTER_NODES", "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102")
HOW_TO_START_CLUSTER = (
    "Start it with `make cluster` (scripts/redis_cluster.sh up; REDIS_CLUSTER_PORT=7170 moves it to 7170-7172)"
    " and point TEST_REDIS_CLUSTER_NODES at its nodes, or run `make test`, which does both."
)


def _check_services() -> None:
    problems = []
    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        problems.append(f"Redis at {TEST_REDIS_URL}: {exc}")
    try:
        server = make_url(TEST_DB_URL).set(database="")
        with sa.create_engine(server, connect_args={"connect_timeout": 3}).connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:
        problems.append(f"MariaDB at {make_url(TEST_DB_URL).render_as_string(hide_password=True)}: {exc}")
    probe = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "kafka_ping.py"), "--bootstrap", KAFKA, "--timeout", "5"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        problems.append(f"Kafka at {KAFKA}: {(probe.stdout + probe.stderr).strip()[-300:]}")
    if problems:
        pytest.exit(
            "Integration tests need real services, and these are not answering:\n  - "
            + "\n  - ".join(problems)
            + "\n"
            + HOW_TO_START,
            returncode=3,
        )


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def base_env(run_id: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        APP_ENV="test",
        DATABASE_URL=TEST_DB_URL,
        REDIS_URL=TEST_REDIS_URL,
        RQ_REDIS_URL=TEST_REDIS_URL,
        KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        KAFKA_ISSUE_TOPIC=f"test.{run_id}.coupon.issue",
        KAFKA_DLQ_TOPIC=f"test.{run_id}.coupon.issue.dlq",
        KAFKA_CONSUMER_GROUP=f"test.{run_id}.coupon-issuer",
        LOG_LEVEL="INFO",
        # A graceful stop waits this long for idle keep-alive connections: every test's teardown pays it.
        GRACEFUL_TIMEOUT="1",
        # A fetch answers as soon as any record is there, instead of waiting up to 500 ms for 64 KB: the tests wait
        # for rows hundreds of times. An idle consumer still wakes every 500 ms, as in production: at the 100 ms the
        # tests used before, each of the ~70 consumers of a run cost itself and the test broker about 5 % of a core
        # while idle, against 2.5 % now (two cores are what the suite runs short of).
        CONSUMER_FETCH_MIN_BYTES="1",
        PYTHONPATH=str(ROOT),
        # Pipeline tests fire hundreds of requests per user at the gate on purpose; the limiter's own tests
        # (test_rate_limit.py) set tight limits.
        RATE_LIMIT_USER_REQUESTS="1000",
        # Three stacks share two cores: a 3,000-client burst on one worker can keep requests queued behind its
        # batches for more than the default 5 s, and be shed (503 E5032, a CI run). The stall and Kafka failover
        # tests go back to the default, which follows their delivery timeout.
        ISSUE_QUEUE_TIMEOUT_MS="20000",
        # The default 19 leaves a consumer about 1.5 % of a core beside each busy group of the suite (its xdist
        # workers and their stacks), and the tests wait for its rows hundreds of times; 10 is what they ran at
        # before the default moved. test_consumer_priority.py starts one at the default.
        CONSUMER_NICE="10",
        # A gate found missing is rebuilt at once: the suite's stacks have nothing in flight when a test deletes a
        # gate. The tests of a loss mid-burst (test_redis_loss.py, the wiped cluster) unset it: the real bound.
        GATE_REBUILD_WAIT_MS="0",
    )
    return env


@pytest.fixture(scope="session")
def migrated_db(base_env: dict[str, str]) -> str:
    """A fresh test database, brought to head by the real migrations (forward from empty)."""
    _check_services()
    recreate_and_migrate(TEST_DB_URL, base_env)
    ensure_topics(KAFKA, {base_env["KAFKA_ISSUE_TOPIC"]: 6, base_env["KAFKA_DLQ_TOPIC"]: 1})
    return TEST_DB_URL


@pytest.fixture(scope="session")
def app(migrated_db: str, base_env: dict[str, str]) -> Iterator[Any]:
    application = create_app(overrides(base_env))
    with application.app_context():
        yield application


@pytest.fixture(scope="session")
def engine(migrated_db: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(migrated_db, pool_pre_ping=True)
    yield eng
    eng.dispose()


@pytest.fixture
def redis_mode(request: pytest.FixtureRequest) -> str:
    """ "standalone" unless a test is parametrized (indirect=True) with "cluster"."""
    mode = getattr(request, "param", "standalone")
    assert mode in ("standalone", "cluster"), mode
    return mode


@pytest.fixture(scope="session")
def standalone_rdb() -> redis.Redis:
    return redis.Redis.from_url(TEST_REDIS_URL, decode_responses=True)


@pytest.fixture(scope="session")
def cluster_rdb() -> RedisCluster:
    """The test Redis Cluster; a missing or unhealthy cluster fails the test with what to start."""
    try:
        client = build_redis("", cluster_nodes=TEST_REDIS_CLUSTER_NODES)
        client.ping(target_nodes=RedisCluster.ALL_NODES)
        state = client.cluster_info()["cluster_state"]
    except Exception as exc:
        pytest.fail(
            f"Redis Cluster at {TEST_REDIS_CLUSTER_NODES} is not answering ({exc}).\n{HOW_TO_START_CLUSTER}",
            pytrace=False,
        )
    if state != "ok":
        pytest.fail(
            f"Redis Cluster at {TEST_REDIS_CLUSTER_NODES} says cluster_state:{state}.\n{HOW_TO_START_CLUSTER}",
            pytrace=False,
        )
    first, others = cluster_startup(cluster_nodes=TEST_REDIS_CLUSTER_NODES)
    return RedisCluster.from_url(first, startup_nodes=[ClusterNode(h, p) for h, p in others], decode_responses=True)


@pytest.fixture
def rdb(redis_mode: str, standalone_rdb: redis.Redis, request: pytest.FixtureRequest) -> Any:
    """The Redis that holds the gate in this test: the standalone test database, or the test cluster."""
    return request.getfixturevalue("cluster_rdb") if redis_mode == "cluster" else standalone_rdb


@pytest.fixture
def gate_client(redis_mode: str, rdb: Any) -> Any:
    """A client as the app builds it (blocking pool, bytes) for the same Redis as `rdb`."""
    if redis_mode == "cluster":
        return build_redis("", cluster_nodes=TEST_REDIS_CLUSTER_NODES)
    return build_redis(TEST_REDIS_URL)


@pytest.fixture(autouse=True)
def clean(engine: sa.Engine, standalone_rdb: redis.Redis, redis_mode: str, rdb: Any, app: Any) -> None:
    """Each test starts from empty tables and an empty Redis test database (and empty cluster masters)."""
    # An open transaction of the in-process session would hold a metadata lock TRUNCATE waits on.
    db.session.remove()
    with engine.begin() as conn:
        conn.execute(sa.text("SET SESSION lock_wait_timeout = 20"))
        # TRUNCATE recreates the table's file (~30 ms for the eight, each test); DELETE of a few rows takes ~3 ms.
        # A table a load test filled is still truncated: deleting thousands of rows one by one costs more.
        probe = " UNION ALL ".join(
            f"SELECT '{table}', COUNT(*) FROM (SELECT 1 FROM {table} LIMIT {BIG_TABLE_ROWS}) AS {table}"
            for table in TABLES
        )
        rows = dict(conn.execute(sa.text(probe)).all())
        for table in TABLES:
            if rows[table] >= BIG_TABLE_ROWS:
                conn.execute(sa.text(f"TRUNCATE TABLE {table}"))
            elif rows[table]:
                conn.execute(sa.text(f"DELETE FROM {table}"))
    standalone_rdb.flushdb()
    if redis_mode == "cluster":
        rdb.flushdb(target_nodes=RedisCluster.PRIMARIES)


@pytest.fixture(scope="session")
def server(base_env: dict[str, str], migrated_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One API server for the tests that need HTTP but not the consumer."""
    stack = Stack(base_env, tmp_path_factory.mktemp("server"))
    stack.start_api()
    yield Api(stack.base_url)
    stack.stop()


@functools.cache
def password_hash(password: str) -> str:
    """One scrypt hash per password for the whole run: each costs ~0.1 s of CPU, and hundreds of tests make users
    (their passwords still work: the hash is real). The accounts tests hash through the API and the CLI."""
    return accounts.hash_password(password)


@pytest.fixture
def admin_token(app: Any) -> str:
    name, hashed = f"admin-{uuid.uuid4().hex[:8]}", password_hash("admin-password-1")
    with unit_of_work(db.session):
        admin = users_repo.add(db.session, str(uuid.uuid4()), name, hashed, Role.ADMIN)
    token, _ = mint_token(admin)
    return token


@pytest.fixture
def mint(app: Any):
    """mint(n) → [(user_id, token)] for n fresh users, in bulk."""

    def _mint(count: int) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        prefix, hashed = f"t{uuid.uuid4().hex[:8]}", password_hash("password-123")
        for chunk in load_users.mint_users(db.session, count, prefix, hashed, user_token):
            out.extend(chunk)
        return out

    return _mint


@pytest.fixture
def pipeline_env(base_env: dict[str, str], migrated_db: str, redis_mode: str, rdb: Any) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:8]
    env = dict(
        base_env,
        KAFKA_ISSUE_TOPIC=f"test.{tag}.coupon.issue",
        KAFKA_DLQ_TOPIC=f"test.{tag}.coupon.issue.dlq",
        KAFKA_CONSUMER_GROUP=f"test.{tag}.coupon-issuer",
    )
    if redis_mode == "cluster":
        # Gate and locks on the cluster; REDIS_URL / RQ_REDIS_URL stay on the standalone test Redis for rq.
        env["REDIS_CLUSTER_NODES"] = TEST_REDIS_CLUSTER_NODES
    ensure_topics(KAFKA, {env["KAFKA_ISSUE_TOPIC"]: 6, env["KAFKA_DLQ_TOPIC"]: 1})
    yield env
    # Kafka may be the thing a test stopped; the topic is unique, so leaving it is harmless.
    with contextlib.suppress(Exception):
        delete_topics(KAFKA, [env["KAFKA_ISSUE_TOPIC"], env["KAFKA_DLQ_TOPIC"]])


@pytest.fixture
def stack(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    """API + one consumer on the test's own topic; more can be started from the test."""
    s = Stack(pipeline_env, tmp_path)
    s.start_api_and_consumer()
    yield s
    s.stop()


@pytest.fixture
def api(stack: Stack) -> Api:
    return Api(stack.base_url)


@pytest.fixture
def fault_report() -> list[dict[str, Any]]:
    """Fault cases append what they saw; the terminal summary prints it (numbers for the issue notes)."""
    return FAULT_REPORT


@pytest.fixture
def failover_report() -> list[dict[str, Any]]:
    """Kafka failover cases append what they saw; the terminal summary prints it after the fault report."""
    return FAILOVER_REPORT
