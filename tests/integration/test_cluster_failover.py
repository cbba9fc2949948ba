"""A Redis Cluster master holding a live sale's coupon is SIGKILLed mid-burst and its replica promoted: with
REDIS_MIN_REPLICA_ACKS=1 every published reservation was on that replica, so no 202 is broken (0 REJECTED), counts
are exact, and nobody is told "duplicate" without a record. The cluster (3 masters + 3 replicas) is this module's
own."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from coupon.adapters import keys
from coupon.adapters.gate import Gate, GateMeta, GateOutcome, GateRequest, GateSnapshot
from coupon.adapters.redis_client import build_redis, cluster_startup
from harness.client import Api, burst
from harness.gate_calls import reserve_one
from harness.invariants import check_invariants, issued_rows, q, wait_drained
from harness.processes import api_and_consumer, wait_for
from harness.services import pid_file
from tests.integration.conftest import ROOT
from tests.integration.test_stalls import NOT_RESERVED, STALL_ENV, _issue_requests
from tests.support.cli import flask_cli

# Fault injection and end-to-end runs: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow

PORT = int(os.environ.get("TEST_REDIS_FAILOVER_PORT", "7150"))
# Replication lag, made: a write this big fills the kernel buffers between a frozen replica and its master (a few MB),
# and stays under the master's replica output buffer limit (64 MB for 60 s), so the link is not cut either.
BALLAST_BYTES = 24 * 1024 * 1024


def _ha_env() -> dict[str, str]:
    return dict(os.environ, REDIS_CLUSTER_PORT=str(PORT), REDIS_CLUSTER_REPLICAS="1", REDIS_CLUSTER_NODE_TIMEOUT="2000")


def _cluster(command: str, env: dict[str, str]) -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "redis_cluster.sh"), *command.split()],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.strip()


@pytest.fixture(scope="module")
def ha_nodes() -> Iterator[str]:
    """host:port,... of a cluster with one replica per master and a short node timeout (fast promotion)."""
    env = _ha_env()
    _cluster("down", env)  # a cluster left by an interrupted run has a failed-over shape: start from scratch
    _cluster("up", env)
    try:
        yield _cluster("nodes", env).splitlines()[-1]
    finally:
        _cluster("down", env)


def replicas_of(client: RedisCluster, port: int) -> int:
    """The port of the replica of the master on `port`."""
    nodes = client.cluster_nodes()
    master_id = next(n["node_id"] for a, n in nodes.items() if a.split("@")[0].endswith(f":{port}"))
    replica = next(a for a, n in nodes.items() if n.get("master_id") == master_id and "slave" in n["flags"])
    return int(replica.split("@")[0].rsplit(":", 1)[1])


def _role(port: int) -> str | None:
    try:
        return str(redis.Redis(port=port, socket_timeout=1).role()[0].decode())
    except redis.RedisError:
        return None


def _settled_holds(rdb: RedisCluster, coupon_id: str, users: set[str]) -> int:
    """How many of these users' holds are confirmed (C) or unconfirmed (U): their batch's publish was decided."""
    holds = rdb.hgetall(keys.holds(coupon_id))
    return sum(1 for user, hold in holds.items() if user in users and hold[:1] in ("C", "U"))


def _client(nodes: str) -> RedisCluster:
    first, others = cluster_startup(cluster_nodes=nodes)
    return RedisCluster.from_url(first, startup_nodes=[ClusterNode(h, p) for h, p in others], decode_responses=True)


@pytest.mark.slow
def test_master_of_the_hot_coupon_killed_mid_sale_replica_promoted(
    ha_nodes: str,
    pipeline_env: dict[str, str],
    tmp_path: Any,
    engine,
    admin_token,
    mint,
    fault_report,
) -> None:
    env = dict(pipeline_env, REDIS_CLUSTER_NODES=ha_nodes, REDIS_MIN_REPLICA_ACKS="1", **STALL_ENV)
    with api_and_consumer(env, tmp_path) as stack:
        api = Api(stack.base_url)
        rdb = _client(ha_nodes)
        cid = api.create_coupon(admin_token, 300)["id"]
        master = rdb.get_node_from_key(keys.meta(cid))
        replicas = [a for a, n in rdb.cluster_nodes().items() if "slave" in n["flags"]]
        assert len(replicas) == 3, f"the cluster has no replicas to promote: {rdb.cluster_nodes()}"
        pid = int(pid_file(f"redis-cluster-{master.port}").read_text().strip())
        users, probes = mint(700), mint(40)
        idem = {u: uuid.uuid4().hex for u, _ in users + probes}
        answers: dict[str, list[tuple[int, Any]]] = {u: [] for u, _ in users}

        def fire(group: list[tuple[str, str]]) -> None:
            for (u, _), r in zip(group, burst(api.base, _issue_requests(cid, group, idem))):
                answers[u].append((r[0], r[1]))

        fire(users[:150])
        promoted = replicas_of(rdb, master.port)
        replica_pid = int(pid_file(f"redis-cluster-{promoted}").read_text().strip())
        with ThreadPoolExecutor(1) as pool:
            # The replica falls behind (frozen for a moment, as a slow link or a GC-paused host would leave it): the
            # wave's reservations reach the master only. Without replica acks they are published, and the promoted
            # replica sells their units again (the DB stock guard then rejects 202s); with them, none is published.
            os.kill(replica_pid, signal.SIGSTOP)
            try:
                # More than the sockets between them hold: what the master writes next stays in its own memory.
                rdb.set(f"coupon:{{{cid}}}:ballast", b"x" * BALLAST_BYTES)
                wave = pool.submit(fire, users[150:])
                wait_for(lambda: int(rdb.get(keys.issued(cid)) or 0) >= 250, 30, "a burst in flight", interval=0.002)
                # The kill lands once the wave's first batches were published and answered, if they will be: their
                # holds have left P (confirmed after the broker's ack, or unconfirmed when too few replicas acked).
                wave_users = {u for u, _ in users[150:]}
                settled = lambda: _settled_holds(rdb, cid, wave_users) >= 50  # noqa: E731
                wait_for(settled, 30, "the wave's first holds settled", interval=0.01)
                os.kill(pid, signal.SIGKILL)
            finally:
                os.kill(replica_pid, signal.SIGCONT)
            killed_at = time.monotonic()
            # The promoted replica has no replica of its own: with REDIS_MIN_REPLICA_ACKS=1 it takes no reservation
            # (503 E5034) until the dead master, restarted as an orchestrator would, rejoins as its replica.
            wait_for(lambda: _role(promoted) == "master", 30, "the replica to be promoted", interval=0.1)
            _cluster(f"rejoin {master.port}", _ha_env())
            recovery = None
            for user_id, token in probes:  # the gate decides again: any answer but a 503
                resp = api.call("POST", f"/api/coupon/{cid}/issue", token, headers={"Idempotency-Key": idem[user_id]})
                answers[user_id] = [(resp.status_code, (resp.json().get("errorMessage") or {}).get("code"))]
                if resp.status_code != 503:
                    recovery = time.monotonic() - killed_at
                    break
                assert time.monotonic() - killed_at < float(os.environ.get("FAILOVER_LIMIT", "15")), (
                    f"the gate still answers 503 15 s after the kill: {resp.text}"
                )
                time.sleep(0.5)
            assert recovery is not None, "ran out of probe users before the gate decided again"
            wave.result(timeout=120)
        first = Counter(a[0] for a in answers.values() if a)
        everyone = dict(users + probes)
        retrying = [(u, everyone[u]) for u, a in answers.items() if a and a[-1][0] == 503]
        fire(retrying)
        wait_for(lambda: rdb.cluster_info()["cluster_state"] == "ok", 30, "the cluster to be ok again")
        repair = flask_cli(stack.env, "reconcile", cid, "--repair", "--older-than", "0")
        accepted = {u for u, a in answers.items() if any(status == 202 for status, _ in a)}
        unconfirmed = {u for u, a in answers.items() if any(code == "E5034" for _, code in a)}
        wait_for(lambda: issued_rows(engine, cid) == 300, 120, "all 300 coupons issued")
        wait_drained(engine, cid, len(accepted))
        owners = {r.user_id for r in q(engine, "SELECT user_id FROM issued_coupons WHERE coupon_id = :c", c=cid)}
        told_duplicate = {u for u, a in answers.items() if any(code == "E3002" for _, code in a)}
        assert told_duplicate <= owners, f"told 'duplicate' without a record: {sorted(told_duplicate - owners)[:3]}"
        refused = {
            u
            for u, a in answers.items()
            if a and not any(s == 202 for s, _ in a) and all(code in NOT_RESERVED for _, code in a if code)
        }
        assert not (owners & refused), "a user told 'nothing reserved' owns the coupon"
        # Every published reservation was acknowledged by the replica before its record left: 0 REJECTED.
        counts = check_invariants(engine, rdb, cid, accepted, redis_intact=False, unconfirmed=unconfirmed)
        assert counts["issued"] == 300
        fault_report.append(
            {
                "case": "8 cluster master SIGKILLed mid-burst, replica promoted (1 replica ack)",
                "sent": len(users) + len(probes),
                "accepted": len(accepted),
                "issued": counts["issued"],
                "rejected": counts["rejected"],
                "recovery_s": round(recovery, 1),
                "unconfirmed": len(unconfirmed),
                "settled": {"repair_exit": repair.returncode},
                "first": {f"{status} {code or ''}".strip(): n for (status, code), n in first.items()},
            }
        )


def test_the_gate_survives_the_loss_of_its_clients_default_node(ha_nodes: str) -> None:
    """redis-py asks its default node for an EVALSHA's keys unless the call names its node; a client whose default
    node was the master that died must still decide once the replica is promoted."""
    client = build_redis("", cluster_nodes=ha_nodes)
    gate = Gate(client)
    probe = _client(ha_nodes)
    nodes = probe.cluster_nodes()
    with_replica = {n["master_id"] for n in nodes.values() if "slave" in n["flags"] and "fail" not in n["flags"]}
    victim = next(
        addr
        for addr, n in nodes.items()
        if "master" in n["flags"] and "fail" not in n["flags"] and n["node_id"] in with_replica
    )
    host, port = victim.split("@")[0].rsplit(":", 1)
    client.set_default_node(client.get_node(host=host, port=int(port)))
    now_ms = int(time.time() * 1000)
    coupon_id = next(
        c
        for c in (str(uuid.uuid4()) for _ in range(1000))
        if client.get_node_from_key(keys.meta(c)).name != f"{host}:{port}"
    )  # its slot lives elsewhere
    gate.install(coupon_id, GateSnapshot(GateMeta(1000, now_ms - 1000, now_ms + 3_600_000, "ACTIVE"), {}))
    assert reserve_one(gate, coupon_id, "before").outcome is GateOutcome.ACCEPTED
    os.kill(int(pid_file(f"redis-cluster-{port}").read_text().strip()), signal.SIGKILL)
    killed_at = time.monotonic()
    decided = wait_for(
        lambda: _decides(gate, coupon_id), 15, "the gate to decide again after its default node died", interval=0.3
    )
    assert decided is GateOutcome.ACCEPTED
    assert time.monotonic() - killed_at < 15


def _decides(gate: Gate, coupon_id: str) -> GateOutcome | None:
    result = gate.reserve_many([GateRequest(coupon_id, uuid.uuid4().hex, "t", uuid.uuid4().hex)])[0]
    return None if isinstance(result, BaseException) else result.outcome
