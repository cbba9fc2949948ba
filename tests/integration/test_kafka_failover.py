"""A three-broker Kafka cluster (scripts/kafka_cluster.sh; topics RF 3, min.insync.replicas 2) under failover in the
middle of a sale: the leader SIGKILLed, followers frozen out of the ISR, a rolling restart of every broker, the
group coordinator killed under three consumers. After each: no accepted request lost, no oversell, no duplicate,
nothing refused as "nothing reserved" becomes a coupon (the design's invariants, harness/invariants.py).

The cluster is one for the whole run, also under pytest-xdist (scripts/test.sh names it in TEST_KAFKA_CLUSTER):
three JVMs per worker would crowd two cores. The first test that needs it starts it, and the module stops it when it
is done (scripts/test.sh hands the module to one worker, whole); each test holds a lock across the workers while it
breaks and mends the cluster, so the cases run one at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from coupon.adapters import keys
from coupon.adapters.kafka_publisher import IssuePublisher
from coupon.adapters.kafka_topics import ensure_topics, topic_settings
from coupon.domain.errors import IssueNotConfirmed, KafkaUnavailable
from harness.client import Api, burst
from harness.invariants import check_invariants, issued_rows, q, wait_drained
from harness.processes import Stack, api_and_consumer, wait_for
from harness.services import pid_file
from tests.integration.conftest import ROOT
from tests.integration.test_scale_out import _balanced
from tests.integration.test_stalls import NOT_RESERVED, _in_flight, _issue_requests
from tests.support.cli import flask_cli

# Fault injection and end-to-end runs: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow

NODES = (1, 2, 3)
# A follower 3 s behind leaves the ISR (Kafka's default is 30 s), so a frozen one drops out within seconds.
REPLICA_LAG_MS = "3000"
# The producer waits up to 6 s for an ack: longer than the 4 s broker session timeout plus a leader election, and
# longer than a frozen follower takes to leave the ISR, so most requests in flight at a failover still end in a
# 202. The sweeper takes anything older than 2 s once the consumers have drained.
FAILOVER_ENV = {
    "KAFKA_DELIVERY_TIMEOUT_MS": "6000",
    "ISSUE_QUEUE_TIMEOUT_MS": "0",  # the default again: it follows the delivery timeout
    "SETTLE_AFTER_SECONDS": "2",
    "SETTLE_LAG_WAIT_SECONDS": "20",
    "KAFKA_REPLICATION_FACTOR": "3",
    "KAFKA_MIN_INSYNC_REPLICAS": "2",
}
# The rolling restart's sale: one wave of 100 requests this often.
WAVE_EVERY_S = 1.0
RECOVERY_LIMIT_S = float(os.environ.get("KAFKA_FAILOVER_LIMIT", "15"))
Answers = dict[str, list[tuple[int, Any]]]


# The run's one cluster: its SERVICES_INSTANCE and KAFKA_CLUSTER_PORT (scripts/test.sh), else this process's.
SHARED = dict(item.split("=", 1) for item in os.environ.get("TEST_KAFKA_CLUSTER", "").split())
CLUSTER_ENV = dict(os.environ, **SHARED)
OWNED_BY_RUN = os.environ.get("TEST_KAFKA_CLUSTER_OWNED") == "1"
LOCK_PATH = ROOT / ".local" / "kafka-failover.lock"


def _kc(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [str(ROOT / "scripts" / "kafka_cluster.sh"), *args],
        env=dict(CLUSTER_ENV, KAFKA_CLUSTER_REPLICA_LAG_MS=REPLICA_LAG_MS),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert not check or out.returncode == 0, f"kafka_cluster.sh {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out


def _node_pid(node: int) -> int:
    return int(pid_file(f"kafka-cluster-{node}", CLUSTER_ENV).read_text().strip())


@contextlib.contextmanager
def _exclusive() -> Iterator[None]:
    """One failover case at a time across the xdist workers (they share the cluster)."""
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_PATH.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _up_if_down() -> bool:
    """Start the cluster unless all three nodes answer; whether this call started it."""
    if _kc("status", check=False).returncode == 0:
        return False
    _kc("up")
    return True


@pytest.fixture(scope="module")
def kafka_cluster() -> Iterator[str]:
    """The bootstrap list of the run's three-broker cluster, started on first use and stopped when the module is done
    with it, if this run started it (scripts/test.sh says so in TEST_KAFKA_CLUSTER_OWNED): left up for the rest of the
    run, three idle JVMs took about 10 % of a core the other tests needed. One that was up before is left up."""
    with _exclusive():
        started = _up_if_down()
    bootstrap = _kc("bootstrap").stdout.strip()
    try:
        yield bootstrap
    finally:
        with _exclusive():
            # The module's topics go once its cases are done (not between them, while the next one breaks the
            # cluster), and any an earlier run left: a broker's restart loads and hands over every partition it
            # holds, and ~25 topics left by six runs slowed the rolling restart until its sale ran out of users.
            if _kc("status", check=False).returncode == 0:  # another worker's module may have stopped it
                _delete_test_topics(bootstrap)
            if started or OWNED_BY_RUN:
                _kc("down")


@pytest.fixture
def cluster(kafka_cluster: str) -> Iterator[str]:
    """The cluster, this test's alone, made whole again after it: every node resumed and running, every broker
    registered. (Started again if another worker's module stopped it in between, under a --dist that spreads the
    module.)"""
    with _exclusive():
        _up_if_down()
        yield kafka_cluster
        for node in NODES:
            with contextlib.suppress(OSError, ValueError):
                os.kill(_node_pid(node), signal.SIGCONT)
        _kc("up")


@pytest.fixture
def cluster_env(cluster: str, base_env: dict[str, str], migrated_db: str) -> dict[str, str]:
    """The pipeline's environment on the cluster: own topics (RF 3, min ISR 2) and consumer group."""
    tag = uuid.uuid4().hex[:8]
    return dict(
        base_env,
        KAFKA_BOOTSTRAP_SERVERS=cluster,
        KAFKA_ISSUE_TOPIC=f"test.{tag}.coupon.issue",
        KAFKA_DLQ_TOPIC=f"test.{tag}.coupon.issue.dlq",
        KAFKA_CONSUMER_GROUP=f"test.{tag}.coupon-issuer",
        # Several consumers on one machine: no metrics port each (a fixed one from the caller's shell would clash).
        CONSUMER_METRICS_PORT="0",
        **FAILOVER_ENV,
    )


def _delete_test_topics(bootstrap: str) -> None:
    """Delete every `test.*` topic on the cluster (it is the tests' alone)."""
    admin = _admin(bootstrap)
    try:
        doomed = [t for t in admin.list_topics() if t.startswith("test.")]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()


def _create_topics(env: dict[str, str], assignments: dict[int, list[int]] | None = None) -> None:
    bootstrap, topic = env["KAFKA_BOOTSTRAP_SERVERS"], env["KAFKA_ISSUE_TOPIC"]
    if assignments:
        admin = _admin(bootstrap)
        try:
            admin.create_topics(
                {topic: {"assignments": assignments, "configs": {"min.insync.replicas": "2"}}},
                wait_for_metadata=True,
            )
        finally:
            admin.close()
        ensure_topics(bootstrap, {env["KAFKA_DLQ_TOPIC"]: 1}, replication_factor=3, min_insync_replicas=2)
    else:
        # What `flask create-topics` does with KAFKA_REPLICATION_FACTOR=3 KAFKA_MIN_INSYNC_REPLICAS=2.
        made = flask_cli(env, "create-topics")
        assert made.returncode == 0, made.stdout + made.stderr
        assert "6 partitions, replication factor 3, min.insync.replicas 2" in made.stdout, made.stdout
    settings = topic_settings(bootstrap, [topic])[topic]
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2), settings
    wait_for(lambda: _isr_full(bootstrap, topic), 60, "every replica of the new topic in sync", interval=0.3)


def _admin(bootstrap: str) -> KafkaAdminClient:
    """An admin client that sends its requests only to the brokers named in `bootstrap`.

    kafka-python sends metadata and topic-config requests to a random known broker, and a SIGSTOPped broker accepts
    the connection and never answers: a test that names only the brokers it keeps running must be taken at its word.
    """
    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=5000, client_id="test-failover")
    named = {tuple(address.rsplit(":", 1)) for address in bootstrap.split(",")}
    manager = admin._manager  # kafka-python has no public way to restrict the nodes it picks
    allowed = [b.node_id for b in manager.cluster.brokers() if (b.host, str(b.port)) in named]
    assert allowed, f"none of the brokers in metadata is one of {bootstrap}"
    manager.least_loaded_node = lambda: random.choice(allowed)
    return admin


def _partitions(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    admin = _admin(bootstrap)
    try:
        (described,) = admin.describe_topics([topic])
        return list(described["partitions"])
    finally:
        admin.close()


def _set_min_isr(bootstrap: str, topic: str, value: int) -> None:
    """Change the topic's min.insync.replicas (incremental AlterConfigs) and wait until it reads back."""

    def alter() -> bool:
        # A fresh client each try: a broker frozen a moment ago may still be the one it would forward through.
        admin = _admin(bootstrap)
        try:
            change = ConfigResource(ConfigResourceType.TOPIC, topic, {"min.insync.replicas": str(value)})
            # kafka-python reports a refused change in the result instead of raising it.
            result = admin.alter_configs([change], raise_on_unknown=False)
            return result["topic"][topic] == "OK"
        finally:
            admin.close()

    # If the frozen broker was the active controller, broker 1 forwards to it until controller.socket.timeout.ms
    # (10 s) runs out, and only then to the one the quorum elected meanwhile.
    wait_for(alter, 60, f"the brokers to take min.insync.replicas={value}", interval=0.5)
    wait_for(lambda: _min_isr(bootstrap, topic) == value, 20, f"min.insync.replicas={value} on {topic}", interval=0.2)


def _min_isr(bootstrap: str, topic: str) -> int:
    admin = _admin(bootstrap)
    try:
        answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic, ["min.insync.replicas"])])
        return int(answer["topic"][topic]["min.insync.replicas"]["value"])
    finally:
        admin.close()


def _isr_full(bootstrap: str, topic: str) -> bool:
    parts = _partitions(bootstrap, topic)
    return bool(parts) and all(len(p["isr_nodes"]) == len(NODES) and p["leader_id"] >= 0 for p in parts)


def _isr_without(bootstrap: str, topic: str, nodes: set[int]) -> bool:
    parts = _partitions(bootstrap, topic)
    return bool(parts) and all(not (set(p["isr_nodes"]) & nodes) for p in parts)


def _coordinator(bootstrap: str, group: str) -> int:
    """The broker coordinating the group now (a fresh FindCoordinator, retried while none is available)."""

    def find() -> int:
        admin = _admin(bootstrap)
        try:
            return int(admin._manager.run(admin._find_coordinator_id, group))
        finally:
            admin.close()

    return int(wait_for(find, 30, f"the coordinator of {group}", interval=0.3))  # type: ignore[arg-type]


def _fire(api: Api, cid: str, group: list[tuple[str, str]], idem: dict[str, str], answers: Answers) -> None:
    for (u, _), r in zip(group, burst(api.base, _issue_requests(cid, group, idem))):
        answers.setdefault(u, []).append((r[0], r[1]))


def _first_accepted(api: Api, cid: str, fresh: list[tuple[str, str]], since: float, answers: Answers) -> float:
    """Seconds from `since` until a user who never asked before gets a 202 (a new user each attempt)."""
    for user_id, token in fresh:
        resp = api.call("POST", f"/api/coupon/{cid}/issue", token)
        answers[user_id] = [(resp.status_code, (resp.json().get("errorMessage") or {}).get("code"))]
        if resp.status_code == 202:
            return time.monotonic() - since
        assert resp.status_code == 503, resp.text
        assert time.monotonic() - since < RECOVERY_LIMIT_S, (
            f"no 202 {RECOVERY_LIMIT_S} s after the failover: {resp.text}"
        )
        time.sleep(0.2)
    raise AssertionError("ran out of fresh users before one was accepted")


def _settle_and_check(stack: Stack, engine: Any, rdb: Any, cid: str, answers: Answers) -> dict[str, Any]:
    """Drain, run the sweeper now, and check the invariants: every 202 a coupon, nothing refused as "nothing
    reserved" a coupon, every "not confirmed" (E5034) settled one way or the other."""
    accepted = {u for u, a in answers.items() if any(status == 202 for status, _ in a)}
    unconfirmed = {u for u, a in answers.items() if any(code == "E5034" for _, code in a)}
    wait_drained(engine, cid, len(accepted))
    wait_for(lambda: not _in_flight(rdb, engine, cid), 120, "every confirmed reservation to reach the DB", interval=0.2)
    repair = flask_cli(stack.env, "reconcile", cid, "--repair", "--older-than", "0")
    assert repair.returncode == 0, repair.stdout + repair.stderr
    owners = {r.user_id for r in q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=cid)}
    refused = {
        u
        for u, a in answers.items()
        if a and not any(status == 202 for status, _ in a) and all(code in NOT_RESERVED for _, code in a if code)
    }
    assert accepted <= owners, f"{len(accepted - owners)} accepted requests lost, e.g. {sorted(accepted - owners)[:3]}"
    assert not (owners & refused), f"{len(owners & refused)} users told 'nothing reserved' own the coupon"
    assert owners <= accepted | unconfirmed, "a coupon for a user who was never accepted"
    counts = check_invariants(engine, rdb, cid, accepted | (unconfirmed & owners))
    first = Counter(f"{a[0][0]} {a[0][1] or ''}".strip() for a in answers.values() if a)
    return {
        "accepted": len(accepted),
        "unconfirmed": len(unconfirmed),
        "refused": len(refused),
        "counts": counts,
        "first": dict(first),
    }


def _report(failover_report: list[dict[str, Any]], case: str, sent: int, seen: dict[str, Any], **more: Any) -> None:
    failover_report.append(
        {
            "failover": case,
            "sent": sent,
            "accepted": seen["accepted"],
            "issued": seen["counts"]["issued"],
            "unconfirmed": seen["unconfirmed"],
            "first": seen["first"],
            **more,
        }
    )


def test_the_leader_of_the_written_partitions_is_sigkilled_mid_sale(
    cluster_env, tmp_path: Path, engine, rdb, admin_token, mint, failover_report
) -> None:
    _create_topics(cluster_env)
    bootstrap, topic = cluster_env["KAFKA_BOOTSTRAP_SERVERS"], cluster_env["KAFKA_ISSUE_TOPIC"]
    with api_and_consumer(cluster_env, tmp_path) as stack:
        api = Api(stack.base_url)
        cid = api.create_coupon(admin_token, 400)["id"]
        probe = api.create_coupon(admin_token, 100)["id"]  # recovery is timed on a coupon that can't sell out
        users, fresh = mint(800), mint(80)
        idem = {u: uuid.uuid4().hex for u, _ in users}
        answers: Answers = {}
        _fire(api, cid, users[:150], idem, answers)
        # The broker leading the most partitions of the topic being written (every user key hashes to one of them).
        leaders = Counter(p["leader_id"] for p in _partitions(bootstrap, topic))
        victim = leaders.most_common(1)[0][0]
        reserved_before = int(rdb.get(keys.issued(cid)) or 0)
        with ThreadPoolExecutor(1) as pool:
            wave = pool.submit(_fire, api, cid, users[150:], idem, answers)
            # The kill lands while the wave is being decided and published, not before its first batch.
            wait_for(
                lambda: int(rdb.get(keys.issued(cid)) or 0) >= reserved_before + 20,
                30,
                "the wave in flight",
                interval=0.002,
            )
            os.kill(_node_pid(victim), signal.SIGKILL)
            killed_at = time.monotonic()
            probes: Answers = {}
            recovery = _first_accepted(api, probe, fresh, killed_at, probes)
            wave.result(timeout=180)
        moved = wait_for(
            lambda: all(p["leader_id"] not in (victim, -1) for p in _partitions(bootstrap, topic)),
            30,
            "every partition to have a new leader",
        )
        assert moved
        # Those told 503 try again with the same Idempotency-Key, as the error says.
        retrying = [(u, t) for u, t in users if answers[u][-1][0] == 503]
        _fire(api, cid, retrying, idem, answers)
        restarted_at = time.monotonic()
        _kc("start", str(victim))
        wait_for(lambda: _isr_full(bootstrap, topic), 120, f"broker {victim} back in every ISR", interval=0.5)
        rejoin = time.monotonic() - restarted_at
        seen = _settle_and_check(stack, engine, rdb, cid, answers)
        assert seen["counts"]["issued"] == 400, seen
        _settle_and_check(stack, engine, rdb, probe, probes)
    _report(
        failover_report,
        f"leader (broker {victim}, {leaders[victim]}/6 partitions) SIGKILLed",
        len(answers) + len(probes),
        seen,
        recovery_s=round(recovery, 1),
        rejoin_isr_s=round(rejoin, 1),
    )


def test_frozen_followers_leave_the_isr_and_two_of_three_frozen_refuse_with_503(
    cluster_env, tmp_path: Path, engine, rdb, admin_token, mint, failover_report
) -> None:
    # Broker 1 leads every partition; 2 and 3 are followers only, so freezing them never moves a leader.
    _create_topics(cluster_env, assignments={p: [1, 2, 3] for p in range(6)})
    # The test's own admin requests go to broker 1 only: a client bootstrapping from a frozen broker hangs.
    bootstrap, topic = cluster_env["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0], cluster_env["KAFKA_ISSUE_TOPIC"]
    with api_and_consumer(cluster_env, tmp_path) as stack:
        api = Api(stack.base_url)
        cid = api.create_coupon(admin_token, 2000)["id"]
        users = mint(900)
        idem = {u: uuid.uuid4().hex for u, _ in users}
        answers: Answers = {}
        _fire(api, cid, users[:100], idem, answers)

        # 1. One follower frozen: it leaves the ISR after replica.lag.time.max.ms; publishing goes on with two.
        os.kill(_node_pid(3), signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            _fire(api, cid, users[100:300], idem, answers)
            wait_for(lambda: _isr_without(bootstrap, topic, {3}), 30, "broker 3 to leave every ISR", interval=0.3)
            out_of_isr = time.monotonic() - frozen_at
            two_in_sync: Answers = {}
            _fire(api, cid, users[300:500], idem, two_in_sync)
            answers.update(two_in_sync)
            assert Counter(a[0][0] for a in two_in_sync.values()) == {202: 200}, Counter(
                f"{a[0][0]} {a[0][1]}" for a in two_in_sync.values()
            )
            # The readiness check's Kafka probe with one broker of three frozen: every probe answers (it used to
            # fail one time in two, bootstrapping from or asking the frozen broker, and take up to 10 s).
            probe, probed_at = IssuePublisher(cluster_env["KAFKA_BOOTSTRAP_SERVERS"], topic), time.monotonic()
            for _ in range(6):
                probe.ping()
            probes_s = time.monotonic() - probed_at

            # 2. Fewer in-sync replicas than min.insync.replicas, the quorum intact: raise the topic's min ISR to 3
            # while the ISR is {1, 2}. The leader refuses every append (NOT_ENOUGH_REPLICAS): 503, never 202.
            _set_min_isr(bootstrap, topic, 3)
            try:
                not_enough: Answers = {}
                _fire(api, cid, users[500:560], idem, not_enough)
                answers.update(not_enough)
                refused_codes = Counter(f"{a[0][0]} {a[0][1]}" for a in not_enough.values())
                assert set(refused_codes) <= {"503 E5032", "503 E5034", "503 E5036"}, refused_codes
            finally:
                _set_min_isr(bootstrap, topic, 2)
            told = sum(proc.log().count("NotEnoughReplicas") for proc in stack.procs if proc.name == "api")

            # 3. The second follower frozen too: 503, never 202.
            os.kill(_node_pid(2), signal.SIGSTOP)
            try:
                # Two of three frozen also takes the controller quorum (combined mode), so the leader can't shrink
                # the ISR to itself: it waits for broker 2's ack, and the producer gives up (outcome unknown).
                below_min: Answers = {}
                _fire(api, cid, users[560:660], idem, below_min)
                answers.update(below_min)
                codes = Counter(f"{a[0][0]} {a[0][1]}" for a in below_min.values())
                assert set(codes) <= {"503 E5032", "503 E5034", "503 E5036"}, codes
            finally:
                os.kill(_node_pid(2), signal.SIGCONT)
        finally:
            os.kill(_node_pid(3), signal.SIGCONT)
        resumed_at = time.monotonic()
        wait_for(lambda: _isr_full(bootstrap, topic), 120, "both followers back in every ISR", interval=0.5)
        rejoin = time.monotonic() - resumed_at
        after: Answers = {}
        _fire(api, cid, users[660:], idem, after)
        answers.update(after)
        retrying = [(u, t) for u, t in users[:660] if answers[u][-1][0] == 503]
        _fire(api, cid, retrying, idem, answers)
        seen = _settle_and_check(stack, engine, rdb, cid, answers)
        assert Counter(a[0][0] for a in after.values()) == {202: len(after)}
    _report(
        failover_report,
        "follower frozen (ISR 2/3), then 2 of 3 frozen",
        len(users),
        seen,
        recovery_s=round(out_of_isr, 1),
        rejoin_isr_s=round(rejoin, 1),
        isr_below_min_quorum_ok=dict(refused_codes),
        api_saw_not_enough_replicas=told,
        two_frozen=dict(codes),
        six_readiness_probes_one_frozen_s=round(probes_s, 1),
    )


def test_producers_built_while_a_follower_is_frozen_never_ask_it(cluster_env) -> None:
    # A frozen broker stays in the metadata until the controller fences it (broker.session.timeout.ms, 4 s here).
    # kafka-python asked a random broker of the metadata for a new producer's id, and when it was the frozen one,
    # the sender waited request_timeout_ms on its handshake, every record past its delivery timeout (503 E5034 for
    # the whole wave after a producer was replaced). Twelve producers built at once right after the freeze: with
    # the old choice, each asked broker 3 one time in three.
    _create_topics(cluster_env, assignments={p: [1, 2, 3] for p in range(6)})
    bootstrap, topic = cluster_env["KAFKA_BOOTSTRAP_SERVERS"], cluster_env["KAFKA_ISSUE_TOPIC"]
    frozen_port = int(bootstrap.split(",")[2].rsplit(":", 1)[1])
    publishers = [IssuePublisher(bootstrap, topic, delivery_timeout_ms=10_000) for _ in range(12)]

    def publish(publisher: IssuePublisher) -> str:
        try:
            publisher.publish(uuid.uuid4().hex, b"{}")
        except (KafkaUnavailable, IssueNotConfirmed) as exc:
            return f"{type(exc).__name__}: {exc.__cause__}"
        return "ok"

    os.kill(_node_pid(3), signal.SIGSTOP)
    try:
        # Acked once broker 3 leaves the ISR (replica.lag.time.max.ms, 3 s), well inside the 10 s delivery timeout.
        with ThreadPoolExecutor(len(publishers)) as pool:
            outcomes = list(pool.map(publish, publishers))
        asked_frozen = _own_sockets_to(frozen_port)
    finally:
        os.kill(_node_pid(3), signal.SIGCONT)
        for publisher in publishers:
            publisher.close()
    assert outcomes == ["ok"] * len(publishers), Counter(outcomes)
    assert asked_frozen == 0, f"{asked_frozen} connection(s) from this process to the frozen broker"


def _own_sockets_to(port: int) -> int:
    """How many TCP sockets of this process are connected (or connecting) to 127.0.0.1:`port`."""
    inodes = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for row in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        remote_port, inode = int(fields[2].rsplit(":", 1)[1], 16), fields[9]
        count += remote_port == port and inode in inodes
    return count


def test_a_rolling_restart_of_all_three_brokers_during_a_sale_loses_nothing(
    cluster_env, tmp_path: Path, engine, rdb, admin_token, mint, failover_report
) -> None:
    _create_topics(cluster_env)
    bootstrap, topic = cluster_env["KAFKA_BOOTSTRAP_SERVERS"], cluster_env["KAFKA_ISSUE_TOPIC"]
    with api_and_consumer(cluster_env, tmp_path) as stack:
        api = Api(stack.base_url)
        cid = api.create_coupon(admin_token, 100_000)["id"]  # never sells out: every answer but a 202 is a failover's
        users = mint(10_000)
        idem = {u: uuid.uuid4().hex for u, _ in users}
        answers: Answers = {}
        done = threading.Event()

        def sale() -> int:
            # A wave of 100 every WAVE_EVERY_S (100 requests/s): the users last 100 s, over twice what the three
            # restarts took in a full run (40 s; the longest one alone took up to 28.5 s under load). Unpaced, the
            # waves ran back to back and used them all up first.
            waves, next_at = 0, time.monotonic()
            for start in range(0, len(users), 100):
                _fire(api, cid, users[start : start + 100], idem, answers)
                waves += 1
                next_at += WAVE_EVERY_S
                if done.wait(max(0.0, next_at - time.monotonic())):
                    break
            return waves

        restarts = []
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(sale)
            for node in NODES:
                began = time.monotonic()
                _kc("stop", str(node))  # SIGTERM: controlled shutdown hands the node's leaderships over first
                _kc("start", str(node))
                wait_for(lambda: _isr_full(bootstrap, topic), 120, f"broker {node} back in every ISR", interval=0.5)
                restarts.append(round(time.monotonic() - began, 1))
            done.set()
            waves = running.result(timeout=300)
        assert len(answers) < len(users), "the sale ran out of users before the restart was over"
        retrying = [(u, t) for u, t in users if u in answers and answers[u][-1][0] == 503]
        _fire(api, cid, retrying, idem, answers)
        seen = _settle_and_check(stack, engine, rdb, cid, answers)
    _report(
        failover_report,
        "rolling restart of brokers 1, 2, 3",
        len(answers),
        seen,
        recovery_s=max(restarts),
        restart_s=restarts,
        waves=waves,
    )


def test_the_group_coordinator_dies_under_three_consumers_counts_stay_exact(
    cluster_env, tmp_path: Path, engine, rdb, admin_token, mint, failover_report
) -> None:
    _create_topics(cluster_env)
    bootstrap, group = cluster_env["KAFKA_BOOTSTRAP_SERVERS"], cluster_env["KAFKA_CONSUMER_GROUP"]
    stack = Stack(cluster_env, tmp_path)
    try:
        api = Api(stack.start_api())
        consumers = [stack.start_consumer(wait_assigned=False) for _ in range(3)]
        wait_for(lambda: _balanced(consumers, 6), 90, "three consumers to share the partitions")
        coordinator = _coordinator(bootstrap, group)
        cid = api.create_coupon(admin_token, 1500)["id"]
        users = mint(2500)
        idem = {u: uuid.uuid4().hex for u, _ in users}
        answers: Answers = {}
        with ThreadPoolExecutor(1) as pool:
            wave = pool.submit(_fire, api, cid, users, idem, answers)
            wait_for(lambda: issued_rows(engine, cid) >= 1, 60, "the consumers to be mid-sale", interval=0.005)
            logs_at_kill = [len(c.log()) for c in consumers]
            os.kill(_node_pid(coordinator), signal.SIGKILL)
            killed_at = time.monotonic()
            persisted_before = issued_rows(engine, cid)
            moved_to = wait_for(
                lambda: (c := _coordinator(bootstrap, group)) != coordinator and c,
                RECOVERY_LIMIT_S,
                "the group to get a new coordinator",
                interval=0.2,
            )
            recovery = time.monotonic() - killed_at
            wave.result(timeout=180)
        retrying = [(u, t) for u, t in users if answers[u][-1][0] == 503]
        _fire(api, cid, retrying, idem, answers)
        assert all(c.alive() for c in consumers), "a consumer exited"
        seen = _settle_and_check(stack, engine, rdb, cid, answers)
        assert seen["counts"]["issued"] == 1500, seen
        # Whether the members rejoined (a rebalance) or went on with their generation under the new coordinator:
        rebalanced = sum("partitions assigned" in c.log()[at:] for c, at in zip(consumers, logs_at_kill))
        _kc("start", str(coordinator))
        wait_for(lambda: _isr_full(bootstrap, cluster_env["KAFKA_ISSUE_TOPIC"]), 120, "the broker back in every ISR")
    finally:
        stack.stop()
    _report(
        failover_report,
        f"group coordinator (broker {coordinator}) SIGKILLed at {persisted_before} rows, 3 consumers",
        len(users),
        seen,
        recovery_s=round(recovery, 1),
        new_coordinator=moved_to,
        consumers_reassigned=rebalanced,
    )
