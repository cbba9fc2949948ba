"""`make bench-scaling`: how many gate decisions per second one Redis node gives, and what a 3-master cluster
adds, measured with the real reserve.lua; plus the sharded-stock simulation. Backs docs/SCALING.md.

1. redis-benchmark runs EVALSHA reserve.lua against one standalone node (the test services' Redis, db 2):
   one user per call, 16 calls pipelined, and 32 users per call (a gate batch, as the API sends it). Besides
   the client-side rate, the node's own cost is read from Redis: main-thread CPU seconds and usec_per_call,
   so "decisions per Redis CPU-second" holds on a dedicated core even though this machine is shared.
2. The same on the 3-master cluster: one coupon per master, three redis-benchmark processes at once
   (aggregate), then all three on ONE coupon (a hot coupon lives in one slot, so on one master).
3. The real Gate (gevent, coalescer, pipeline) from two Python processes, standalone and on the cluster.
4. bench/sharded_stock.py: one coupon's stock over K slots.

Writes bench/results/scaling.json and bench/SCALING-RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sharded_stock import table as sharded_table
from coupon.adapters import keys
from coupon.adapters.lua import source
from coupon.adapters.redis_client import build_redis

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
CLUSTER_NODES = os.environ.get("BENCH_REDIS_CLUSTER_NODES", "127.0.0.1:7100,127.0.0.1:7101,127.0.0.1:7102")
HUGE = 10**12  # stock that never runs out: every call does the full accept path (INCR + ZADD)


def say(msg: str) -> None:
    print(f"[scaling] {msg}", flush=True)


def node_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])


def evalsha_stats(client: redis.Redis) -> dict[str, float]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return {"calls": float(stats.get("calls", 0)), "usec": float(stats.get("usec", 0))}


def install(client: Any, coupon_id: str) -> None:
    now_ms = int(time.time() * 1000)
    client.delete(*keys.gate_keys(coupon_id))
    client.hset(
        keys.meta(coupon_id),
        mapping={"total": HUGE, "starts": now_ms - 60_000, "ends": now_ms + 86_400_000, "status": "ACTIVE"},
    )


def benchmark_cmd(
    host: str,
    port: int,
    db: int,
    sha: str,
    coupon_id: str,
    users_per_call: int,
    pipeline: int,
    requests: int,
    clients: int,
) -> list[str]:
    return [
        "redis-benchmark",
        "-h",
        host,
        "-p",
        str(port),
        "--dbnum",
        str(db),
        "-n",
        str(requests),
        "-c",
        str(clients),
        "-P",
        str(pipeline),
        "-r",
        "1000000000",
        "--csv",
        "EVALSHA",
        sha,
        str(len(keys.gate_keys(coupon_id))),
        *keys.gate_keys(coupon_id),
        "30000",
        *(["u:__rand_int__", "tok", "ev"] * users_per_call),
    ]


def parse_csv(out: str) -> dict[str, float]:
    line = [ln for ln in out.strip().splitlines() if ln.startswith('"EVALSHA')][-1]
    fields = re.findall(r'"([^"]*)"', line)
    return {"calls_per_s": float(fields[1]), "p50_ms": float(fields[4]), "p99_ms": float(fields[6])}


def run_benchmarks(
    targets: list[tuple[redis.Redis, str, int, int, str]],
    users_per_call: int,
    pipeline: int,
    requests: int,
    clients: int,
) -> dict[str, Any]:
    """targets: (node client, host, port, db, coupon id); all benchmark processes run at the same time."""
    sha = source_sha(targets)
    before = [(node_cpu(t[0]), evalsha_stats(t[0])) for t in targets]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            benchmark_cmd(host, port, db, sha, cid, users_per_call, pipeline, requests, clients),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _, host, port, db, cid in targets
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    wall = time.monotonic() - started
    per: list[dict[str, Any]] = []
    for (client, *_rest), (cpu0, st0), (out, err), proc in zip(targets, before, outs, procs):
        if proc.returncode != 0:
            raise RuntimeError(f"redis-benchmark failed: {err[-500:]}")
        result = parse_csv(out)
        st1 = evalsha_stats(client)
        calls = st1["calls"] - st0["calls"]
        cpu = node_cpu(client) - cpu0
        result.update(
            decisions_per_s=result["calls_per_s"] * users_per_call,
            usec_per_call=round((st1["usec"] - st0["usec"]) / calls, 2) if calls else None,
            node_cpu_s=round(cpu, 2),
            decisions_per_node_cpu_s=round(calls * users_per_call / cpu) if cpu else None,
        )
        per.append(result)
    distinct = {id(t[0]) for t in targets}
    return {
        "users_per_call": users_per_call,
        "pipeline": pipeline,
        "clients_each": clients,
        "processes": len(targets),
        "nodes": len(distinct),
        "wall_s": round(wall, 2),
        "calls_per_s": round(sum(p["calls_per_s"] for p in per)),
        "decisions_per_s": round(sum(p["decisions_per_s"] for p in per)),
        "per_process": per,
    }


_SHA: dict[str, str] = {}


def source_sha(targets: list[tuple[redis.Redis, str, int, int, str]]) -> str:
    for client, *_ in targets:
        _SHA["reserve"] = client.script_load(source("reserve"))
    return _SHA["reserve"]


def cleanup(client: Any, coupon_ids: list[str]) -> None:
    for cid in coupon_ids:
        client.delete(*keys.gate_keys(cid))


def cluster_masters(cluster: RedisCluster) -> list[tuple[redis.Redis, str, int]]:
    out = []
    for node in sorted(cluster.get_primaries(), key=lambda n: n.port):
        out.append((redis.Redis(host=node.host, port=node.port), node.host, node.port))
    return out


def coupon_on(cluster: RedisCluster, host: str, port: int) -> str:
    while True:
        cid = str(uuid.uuid4())
        node = cluster.get_node_from_key(keys.meta(cid))
        if (node.host, node.port) == (host, port):
            return cid


def gate_load(
    redis_url: str,
    cluster_nodes: str,
    coupons: list[str],
    processes: int,
    greenlets: int,
    seconds: float,
    node_clients: list[redis.Redis],
) -> dict[str, Any]:
    spec = {
        "redis_url": redis_url,
        "cluster_nodes": cluster_nodes,
        "coupons": coupons,
        "greenlets": greenlets,
        "seconds": seconds,
    }
    procs = []
    for _ in range(processes):
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "gate_load.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(spec) + "\n")
        proc.stdin.flush()
        procs.append(proc)
    for proc in procs:
        assert proc.stdout.readline().strip() == "READY"
    cpu0 = [node_cpu(c) for c in node_clients]
    st0 = [evalsha_stats(c) for c in node_clients]
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.communicate(timeout=seconds + 120)[0]) for proc in procs]
    cpu = sum(node_cpu(c) for c in node_clients) - sum(cpu0)
    calls = sum(evalsha_stats(c)["calls"] for c in node_clients) - sum(s["calls"] for s in st0)
    decisions = sum(r["decisions"] for r in results)
    wall = max(r["seconds"] for r in results)
    return {
        "processes": processes,
        "greenlets_each": greenlets,
        "coupons": len(coupons),
        "decisions_per_s": round(decisions / wall),
        "errors": sum(r["errors"] for r in results),
        "decisions_per_evalsha": round(decisions / calls, 1) if calls else None,
        "redis_cpu_s": round(cpu, 2),
        "seconds": round(wall, 1),
        "outcomes": {k: sum(r["outcomes"].get(k, 0) for r in results) for k in ("ACCEPTED", "DUPLICATE", "SOLD_OUT")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000, help="EVALSHA calls per single-user run")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each Python gate run")
    args = parser.parse_args()
    n1, nb = args.requests, max(args.requests // 10, 1000)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_before": os.getloadavg(),
        "redis_version": None,
    }
    # ---- 1. one standalone node
    single = redis.Redis.from_url(REDIS_URL)
    results["redis_version"] = single.info("server")["redis_version"]
    host, port = single.connection_pool.connection_kwargs["host"], single.connection_pool.connection_kwargs["port"]
    db = single.connection_pool.connection_kwargs.get("db", 0)
    runs: dict[str, Any] = {}
    for name, users_per_call, pipeline, n in (
        ("1 user/call", 1, 1, n1),
        ("1 user/call, 16 pipelined", 1, 16, n1),
        ("32 users/call", 32, 1, nb),
    ):
        cid = str(uuid.uuid4())
        install(single, cid)
        say(f"one node, {name}")
        runs[name] = run_benchmarks([(single, host, port, db, cid)], users_per_call, pipeline, n, 50)
        cleanup(single, [cid])
    results["one_node"] = runs
    # ---- 2. the cluster
    cluster = build_redis("", cluster_nodes=CLUSTER_NODES)
    masters = cluster_masters(cluster)  # type: ignore[arg-type]
    spread = [coupon_on(cluster, h, p) for _, h, p in masters]  # type: ignore[arg-type]
    hot = spread[0]
    runs = {}
    for name, users_per_call, n in (("1 user/call", 1, n1), ("32 users/call", 32, nb)):
        for cid in spread:
            install(cluster, cid)
        say(f"cluster, {len(masters)} coupons on {len(masters)} masters, {name}")
        runs[f"spread, {name}"] = run_benchmarks(
            [(c, h, p, 0, cid) for (c, h, p), cid in zip(masters, spread)], users_per_call, 1, n, 50
        )
        install(cluster, hot)
        hot_node = next(
            m
            for m in masters
            if (m[1], m[2])
            == (cluster.get_node_from_key(keys.meta(hot)).host, cluster.get_node_from_key(keys.meta(hot)).port)
        )
        say(f"cluster, one hot coupon from {len(masters)} benchmark processes, {name}")
        runs[f"hot coupon, {name}"] = run_benchmarks(
            [(hot_node[0], hot_node[1], hot_node[2], 0, hot) for _ in masters], users_per_call, 1, n, 50
        )
        cleanup(cluster, spread)
    results["cluster"] = runs
    # ---- 3. the real Gate from Python (gevent + coalescer), two processes
    gate_runs: dict[str, Any] = {}
    cid = str(uuid.uuid4())
    install(single, cid)
    say("real Gate, standalone, 2 processes x 200 greenlets, one coupon")
    gate_runs["standalone, 1 coupon"] = gate_load(REDIS_URL, "", [cid], 2, 200, args.seconds, [single])
    cleanup(single, [cid])
    for cid in spread:
        install(cluster, cid)
    say("real Gate, cluster, 2 processes x 200 greenlets, coupons on 3 masters")
    gate_runs["cluster, 3 coupons on 3 masters"] = gate_load(
        "", CLUSTER_NODES, spread, 2, 200, args.seconds, [m[0] for m in masters]
    )
    cleanup(cluster, spread)
    results["python_gate"] = gate_runs
    # ---- 4. simulation
    say("sharded-stock simulation")
    results["sharded_stock"] = {
        "10x demand": sharded_table(1000, 10_000, [1, 2, 4, 8, 16], seeds=range(5)),
        "1.05x demand": sharded_table(1000, 1_050, [1, 4, 16], seeds=range(5), retry_share=0.0),
    }
    results["loadavg_after"] = os.getloadavg()
    out = ROOT / "bench" / "results" / "scaling.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    (ROOT / "bench" / "SCALING-RESULTS.md").write_text(render(results))
    say(f"wrote {out.relative_to(ROOT)} and bench/SCALING-RESULTS.md")


def render(r: dict[str, Any]) -> str:
    lines = [
        "# Scaling measurements (`make bench-scaling`)",
        "",
        f"{r['when']}, {r['cpus']} CPUs shared with other work (load average {r['loadavg_before'][0]:.2f} before, "
        f"{r['loadavg_after'][0]:.2f} after), Redis {r['redis_version']}, Python {r['python']}. "
        "Every call is the real `reserve.lua` (EVALSHA) on a coupon with unlimited stock, so each decision takes "
        "the full accept path (HMGET, TIME, ZSCORE, INCR, ZADD). redis-benchmark: 50 connections per process. "
        "'per node CPU-s' = decisions divided by the Redis main thread's CPU seconds (INFO cpu): the capacity "
        "of one dedicated core, independent of what else ran on this machine.",
        "",
        "## One Redis node",
        "",
        "| shape | calls/s | decisions/s | p50 / p99 ms | usec per call (server) | decisions per node CPU-s |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in r["one_node"].items():
        p = run["per_process"][0]
        lines.append(
            f"| {name} | {run['calls_per_s']:,} | {run['decisions_per_s']:,} | {p['p50_ms']} / {p['p99_ms']} "
            f"| {p['usec_per_call']} | {p['decisions_per_node_cpu_s']:,} |"
        )
    lines += [
        "",
        "## Redis Cluster, 3 masters (all on this machine's cores)",
        "",
        "| shape | benchmark processes | masters busy | calls/s (sum) | decisions/s (sum) | decisions per node CPU-s (each) |",
        "|---|---|---|---|---|---|",
    ]
    for name, run in r["cluster"].items():
        each = ", ".join(f"{p['decisions_per_node_cpu_s']:,}" for p in run["per_process"])
        lines.append(
            f"| {name} | {run['processes']} | {run['nodes']} | {run['calls_per_s']:,} | "
            f"{run['decisions_per_s']:,} | {each} |"
        )
    lines += [
        "",
        "## The real Gate from Python (gevent greenlets → coalescer → one pipeline per flush)",
        "",
        "| setup | decisions/s | decisions per EVALSHA | Redis CPU-s | errors |",
        "|---|---|---|---|---|",
    ]
    for name, run in r["python_gate"].items():
        lines.append(
            f"| {name}, {run['processes']} processes × {run['greenlets_each']} greenlets | "
            f"{run['decisions_per_s']:,} | {run['decisions_per_evalsha']} | {run['redis_cpu_s']} "
            f"({run['seconds']} s) | {run['errors']} |"
        )
    lines += ["", "## One coupon's stock split over K slots (bench/sharded_stock.py, mean of 5 seeds)", ""]
    for name, rows in r["sharded_stock"].items():
        lines += [
            f"Stock 1,000, {name} ({rows[0]['users']:,} users):",
            "",
            "| K | policy | accepted | users accepted twice | unfair sold-outs | left unsold | late wins (sweep) "
            "| first-1,000 arrivals refused | Redis calls |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in rows:
            lines.append(
                f"| {row['shards']} | {row['policy']} | {row['accepted']} | {row['double_accepted']} | "
                f"{row['unfair_sold_out']} | {row['left_unsold']} | {row['late_wins']} | "
                f"{row['fcfs_misses']} | {row['redis_calls']} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
