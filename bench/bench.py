"""`make bench`: ceiling vs issue throughput, open-loop latency, a 10,000-user flash sale, issue latency during
a signup/login rush, a flash sale watched by 2,000 live-stock streams, consumer drain, and the issue endpoint on a
replicated Kafka (RF 3 + acks=all on the three-broker cluster of scripts/kafka_cluster.sh) against RF 1 on the
single broker, and the cost of two Redis safety settings (stage `redis`): replica acknowledgements (WAIT) on a Redis
Cluster with replicas, and the single Redis' append-only file.

Runs against the real services on their own DB (coupon_bench), Redis db 2 and Kafka topics, with the same
gunicorn/gevent configuration as production. Writes bench/results/latest.json and bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import backlog
from bench.compare import MEASURES, fmt
from coupon import create_app
from coupon.adapters import keys
from coupon.adapters.kafka_topics import ensure_topics
from coupon.adapters.redis_client import build_redis
from coupon.extensions import db
from coupon.http.minting import mint_token, user_token
from coupon.services import load_users
from coupon.services.accounts import ensure_admin, hash_password
from harness.client import Api, burst
from harness.database import recreate_and_migrate
from harness.invariants import check_invariants, issued_rows, wait_drained
from harness.processes import Stack, wait_for
from harness.services import state_dir

# Defaults follow scripts/services.sh's port variables (as tests/integration/conftest.py does), so a bench next to
# other stacks on this machine measures the services it started.
DB_URL = os.environ.get(
    "BENCH_DATABASE_URL", f"mysql+pymysql://coupon:coupon@127.0.0.1:{os.environ.get('DB_PORT', '3306')}/coupon_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", f"redis://127.0.0.1:{os.environ.get('REDIS_PORT', '6379')}/2")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}")
ALL_STAGES = (
    "ceiling",
    "issue",
    "crowd",
    "openloop",
    "flash",
    "accounts",
    "streams",
    "drain",
    "replication",
    "redis",
)
ACCOUNT_CLIENTS = 64
LOG_DIR = ROOT / ".local" / "bench"
RESULTS = ROOT / "bench" / "RESULTS.md"
REPLICATION_COMMAND = "scripts/kafka_cluster.sh up && .venv/bin/python bench/bench.py --only replication"
# The redis stage starts (and stops again, if it started it) its own Redis Cluster with replicas: only the single
# services need to be up.
REDIS_COMMAND = "scripts/services.sh up && .venv/bin/python bench/bench.py --only redis"
# Its own ports: 3 masters + 3 replicas on 7170..7175 (buses 17170..17175), clear of `make cluster` (7100..7102) and
# the tests' failover cluster (7150..7155).
REDIS_CLUSTER_PORT = int(os.environ.get("BENCH_REDIS_CLUSTER_PORT", "7170"))
REDIS_CLUSTER_SIZE = 6


def kafka_cluster_bootstrap() -> str:
    """BENCH_KAFKA_CLUSTER, else the bootstrap list of this instance's scripts/kafka_cluster.sh (which must be up)."""
    given = os.environ.get("BENCH_KAFKA_CLUSTER")
    if given:
        return given
    out = subprocess.run(
        [str(ROOT / "scripts" / "kafka_cluster.sh"), "bootstrap"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_quiet(limit_s: float = 30.0, busy_below: float = 0.25) -> float:
    """Wait (at most limit_s) until the machine is mostly idle for a second: after a drain, MariaDB's
    background flushing and the broker's GC can take a core for seconds and would land in a latency stage."""
    started = time.monotonic()
    busy, total = _cpu_jiffies()
    while time.monotonic() - started < limit_s:
        time.sleep(1.0)  # a one-second sample of the machine's load: there is no event to wait for
        busy2, total2 = _cpu_jiffies()
        share = (busy2 - busy) / max(total2 - total, 1)
        busy, total = busy2, total2
        if share < busy_below:
            break
    return round(time.monotonic() - started, 1)


def say(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def env_for(tag: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        APP_ENV="test",
        DATABASE_URL=DB_URL,
        REDIS_URL=REDIS_URL,
        RQ_REDIS_URL=REDIS_URL,
        KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        KAFKA_ISSUE_TOPIC=f"bench.{tag}.coupon.issue",
        KAFKA_DLQ_TOPIC=f"bench.{tag}.coupon.issue.dlq",
        KAFKA_CONSUMER_GROUP=f"bench.{tag}.coupon-issuer",
        LOG_LEVEL="INFO",
        GRACEFUL_TIMEOUT="3",
        PYTHONPATH=str(ROOT),
    )
    return env


def fresh_state(env: dict[str, str]) -> None:
    """An empty, migrated bench database, an empty Redis db and the run's own topics."""
    say("fresh database coupon_bench, Redis db 2, topics")
    recreate_and_migrate(DB_URL, env)
    redis.Redis.from_url(REDIS_URL).flushdb()
    ensure_topics(KAFKA, {env["KAFKA_ISSUE_TOPIC"]: 6, env["KAFKA_DLQ_TOPIC"]: 1})


def _cpu_seconds(pid: int, kind: str = "all") -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    user, system = int(fields[11]), int(fields[12])
    ticks = {"all": user + system, "user": user, "sys": system}[kind]
    return ticks / os.sysconf("SC_CLK_TCK")


def _server_pids(api_pid: int) -> dict[str, list[int]]:
    """The API's gunicorn processes and the local services' pids (the pid files of scripts/services.sh and
    scripts/kafka_cluster.sh for this SERVICES_INSTANCE)."""
    children = Path(f"/proc/{api_pid}/task/{api_pid}/children")
    pids = {"api": [api_pid] + [int(p) for p in children.read_text().split()] if children.exists() else [api_pid]}
    run_dir = state_dir() / "run"
    for name in ("redis", "kafka", "mariadb"):
        pid_file = run_dir / f"{name}.pid"
        if pid_file.exists():
            pids[name] = [int(pid_file.read_text().strip())]
    nodes = [run_dir / f"kafka-cluster-{n}.pid" for n in (1, 2, 3)]
    if any(f.exists() for f in nodes):
        pids["kafka_cluster"] = [int(f.read_text().strip()) for f in nodes if f.exists()]
    # Only the redis stage's cluster: the one of `make cluster` (7100..) or the tests', idle beside a run, is noise.
    ports = range(REDIS_CLUSTER_PORT, REDIS_CLUSTER_PORT + REDIS_CLUSTER_SIZE)
    redis_nodes = [run_dir / f"redis-cluster-{port}.pid" for port in ports]
    if any(f.exists() for f in redis_nodes):
        pids["redis_cluster"] = [int(f.read_text().strip()) for f in redis_nodes if f.exists()]
    return pids


def cpu_snapshot(api_pid: int, consumers: Sequence[int] = ()) -> dict[str, float]:
    """CPU seconds so far of the API's processes, the consumers given and the local services, per group."""
    pids = _server_pids(api_pid)
    if consumers:
        pids["consumer"] = list(consumers)
    snap = {name: sum(_cpu_seconds(p) for p in group) for name, group in pids.items()}
    snap["api_sys"] = sum(_cpu_seconds(p, "sys") for p in pids["api"])  # part of "api": the kernel's share
    return snap


def wrk(
    url: str,
    script: str,
    seconds: int,
    connections: int,
    extra_env: dict[str, str] | None = None,
    api_pid: int | None = None,
    consumers: Sequence[int] = (),
) -> dict[str, Any]:
    """Run wrk; with api_pid, also the CPU the API, the consumers given and the services spent per request (robust
    to a busy box)."""
    before = cpu_snapshot(api_pid, consumers) if api_pid else {}
    # Pinned to one core where taskset exists, so the load generator takes as little as it can from the server.
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    cmd = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(ROOT / "bench" / script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(extra_env or {})), check=True)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    result: dict[str, Any] = {"rps": rps, "requests": total, "non_2xx": int(errors.group(1)) if errors else 0}
    if api_pid:
        after = cpu_snapshot(api_pid, consumers)
        result["cpu_us_per_request"] = {
            k: round(1e6 * (after[k] - before.get(k, 0.0)) / max(total, 1), 1) for k in after
        }
    for key in ("LATENCY", "STATUS"):
        m = re.search(rf"^{key} (\{{.*\}})$", text, re.M)
        if m:
            result[key.lower()] = json.loads(m.group(1))
    return result


def write_tokens(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{u} {t}\n" for u, t in pairs))
    return path


def percentiles(values: list[float]) -> dict[str, float]:
    values = sorted(values)

    def pick(p: float) -> float:
        return round(values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))], 2)

    return {"p50": pick(50), "p95": pick(95), "p99": pick(99), "max": round(values[-1], 2)}


def _time_until_rows(engine: sa.Engine, coupon_id: str, rows: int, timeout: float) -> float:
    """Epoch seconds at which the coupon first had `rows` issued rows (polled every 20 ms)."""
    wait_for(lambda: issued_rows(engine, coupon_id) >= rows, timeout, f"{rows} rows", interval=0.02)
    return time.time()


def drain(
    env: dict[str, str], engine: sa.Engine, api: Api, admin: str, messages: int, consumers: int
) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    denv = dict(env, KAFKA_ISSUE_TOPIC=f"bench.drain.{tag}", KAFKA_CONSUMER_GROUP=f"bench.drain.{tag}")
    ensure_topics(KAFKA, {denv["KAFKA_ISSUE_TOPIC"]: 6})
    coupon = api.create_coupon(admin, messages)
    backlog.preload(KAFKA, denv["KAFKA_ISSUE_TOPIC"], coupon["id"], messages)
    stack = Stack(denv, LOG_DIR)
    try:
        launched = time.monotonic()
        for _ in range(consumers):
            stack.start_consumer(wait_assigned=False)
        # The clock runs from the first committed batch to the last row: a consumer drains as soon as it has
        # partitions, so waiting for every consumer's assignment first could miss most of the drain.
        seen = [0]

        def some_rows() -> bool:
            seen[0] = issued_rows(engine, coupon["id"])
            return seen[0] > 0

        wait_for(some_rows, 120, "the first rows", interval=0.02)
        started, done_before = time.monotonic(), seen[0]
        # From the first batch on: the consumers' start-up (imports, joining the group) is not part of a row's cost.
        pids = [p.pid for p in stack.procs]
        cpu_before = cpu_snapshot(pids[0], pids)
        wait_for(lambda: issued_rows(engine, coupon["id"]) >= messages, 600, "the drain", interval=0.02)
        finished = time.monotonic()
        cpu_after = cpu_snapshot(pids[0], pids)
    finally:
        stack.stop()
    seconds = finished - started
    rows = messages - done_before
    cpu = {
        k: round(1e6 * (cpu_after[k] - cpu_before.get(k, 0.0)) / max(rows, 1), 1)
        for k in ("consumer", "mariadb", "kafka", "redis")
        if k in cpu_after
    }
    return {
        "cpu_us_per_row": cpu,
        "messages": messages,
        "consumers": consumers,
        "seconds": round(seconds, 2),
        "rows_per_s": round((messages - done_before) / seconds, 1),
        "seconds_from_launch": round(finished - launched, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test of the harness")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument(
        "--crowd-connections",
        type=int,
        default=256,
        help="the crowd stage repeats ceiling and issue at this many connections",
    )
    ap.add_argument("--streams", type=int, default=2000, help="open live-stock streams in the streams stage")
    ap.add_argument(
        "--stream-sale-quantity",
        type=int,
        default=0,
        help="the streams stage's coupon size under wrk; 0: what a 3 s calibration run says a quarter of --seconds sells",
    )
    ap.add_argument(
        "--redis-pairs",
        type=int,
        default=2,
        help="the redis stage's alternating pairs per setting (acks 0/1, AOF off/on)",
    )
    ap.add_argument(
        "--redis-always",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the redis stage also measures appendfsync always (one run after the pairs)",
    )
    ap.add_argument(
        "--only",
        default=",".join(ALL_STAGES),
        help="comma-separated stages to run (RESULTS.md is written only when all run)",
    )
    args = ap.parse_args()
    stages = set(args.only.split(","))
    full = stages >= set(ALL_STAGES)
    scale = 0.2 if args.quick else 1.0
    # The throughput stages take a fresh user per request: longer runs need more of them (10 s: 70,000).
    users = scale * max(1.0, args.seconds / 10)
    if not shutil.which("wrk"):
        say("installing wrk (apt)")
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=True, capture_output=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if "streams" in stages:
        # The API's workers hold the streams (one descriptor each) beside the load's connections; they inherit this.
        raise_fd_limit(args.streams + 2 * (args.crowd_connections + 256) + 1024)
    env = env_for(uuid.uuid4().hex[:8])
    fresh_state(env)
    app = create_app(
        {
            "APP_ENV": "test",
            "DATABASE_URL": DB_URL,
            "REDIS_URL": REDIS_URL,
            "KAFKA_ISSUE_TOPIC": env["KAFKA_ISSUE_TOPIC"],
        }
    )
    engine = sa.create_engine(DB_URL)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}",
        "load_generator": "wrk -t1 pinned to core 1 (ceiling, throughput: the endpoint alone, after a 5 s warm-up of"
        " the issue path; the consumer starts after it); gevent open-loop and burst clients"
        " (consumer running)",
        "workers": int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2)),
        "connections": args.connections,
    }
    stack = Stack(env, LOG_DIR)
    try:
        with app.app_context():
            admin, _ = ensure_admin(db.session, "bench-admin", "bench-admin-password")
            admin_token, _ = mint_token(admin)
            # The accounts stage takes the last 20,000 (two open-loop runs of 10 s at 1,000 req/s).
            need = (int(80_000 * users) + 40_000 if stages - {"accounts"} else 0) + (
                20_000 if "accounts" in stages else 0
            )

            say(f"minting {need} users")
            pairs: list[tuple[str, str]] = []
            for chunk in load_users.mint_users(
                db.session, need, f"b{uuid.uuid4().hex[:6]}", hash_password("bench-password"), user_token
            ):
                pairs.extend(chunk)
        api = Api(stack.start_api(workers=results["workers"]))
        offset_warm = int(80_000 * users)  # warm-up users; they take part in the warm-up coupon only

        if stages & {"ceiling", "issue", "crowd", "streams"}:
            # A broker that has just started runs its produce path interpreted: its CPU per request fell about 3x
            # within minutes in our runs. Warm the whole path (API workers, Redis, Kafka) before measuring.
            say("0. warm-up: 5 s of issue requests (not measured)")
            warm_tokens = write_tokens(LOG_DIR / "tokens-warmup.txt", pairs[offset_warm:])
            warm = api.create_coupon(admin_token, 10_000_000)
            wrk(api.base, "issue.lua", 5, args.connections, {"TOKENS": str(warm_tokens), "COUPON_ID": warm["id"]})
        if stages & {"ceiling", "issue", "crowd"}:
            say(f"1. ceiling: GET /health, {args.connections} connections, {args.seconds}s")
            results["ceiling"] = wrk(
                api.base + "/health", "health.lua", args.seconds, args.connections, api_pid=stack.procs[0].pid
            )
            say(f"   {results['ceiling']['rps']:.0f} req/s")
        offset = int(60_000 * users) + 10_000
        api_pid = stack.procs[0].pid
        if "issue" in stages:
            throughput(args, api, admin_token, pairs[:offset], results, api_pid)
        if "crowd" in stages:
            crowd(args, api, admin_token, pairs[:offset], results, api_pid)
        if "openloop" in stages:
            say(f"   machine quiet after {wait_quiet()} s")
            say("3. open loop: 1,000 req/s offered for 10 s, the API alone (no consumer)")
            results["open_loop_1000rps"] = openloop(args, api, admin_token, pairs[offset : offset + 10_000])
        # The endpoint was measured on its own; the consumer now drains what it accepted.
        stack.start_consumer()
        if "issue" in stages:
            check_throughput_run(results["issue"], args.connections, engine)
        if "crowd" in stages:
            check_throughput_run(results["crowd"]["issue"], args.crowd_connections, engine)
        backlog_events = int(50_000 * scale)
        if "issue" in stages:
            say(f"   machine quiet after {wait_quiet()} s")
            say(f"2c. issue throughput while a consumer drains a backlog of {backlog_events:,} events")
            watch = consumer_with_backlog(stack, env, engine, api, admin_token, backlog_events)
            started = time.time()
            run = issue_run(
                args,
                api,
                admin_token,
                pairs[:offset],
                results["ceiling"],
                args.connections,
                api_pid,
                "-draining",
                consumers=consumer_pids(stack),
            )
            run["backlog"] = backlog_progress(watch, started, time.time())
            results["issue_draining"] = run
            say(f"   backlog: {run['backlog']}")
            check_throughput_run(run, args.connections, engine)
            say(f"   machine quiet after {wait_quiet()} s")
            results["steady_cost"] = steady_cost(args, stack, engine, api, admin_token, pairs[:offset])
        if "openloop" in stages:
            say(f"   machine quiet after {wait_quiet()} s")
            say(f"3b. open loop: 1,000 req/s for 10 s while a consumer drains a backlog of {backlog_events:,} events")
            watch = consumer_with_backlog(stack, env, engine, api, admin_token, backlog_events)
            started = time.time()
            run = openloop(args, api, admin_token, pairs[offset + 10_000 : offset + 20_000])
            run["backlog"] = backlog_progress(watch, started, time.time())
            results["open_loop_draining"] = run
            say(f"   backlog: {run['backlog']}")
        offset += 20_000

        if "flash" in stages:
            say(f"   machine quiet after {wait_quiet()} s")
            flash_sale(api, admin_token, pairs[offset : offset + 10_000], results, engine, stack)
        if "accounts" in stages:
            say(f"   machine quiet after {wait_quiet()} s")
            accounts(api, admin_token, pairs[-20_000:], results)
        if "streams" in stages:
            streams(args, api, admin_token, pairs, results, stack.procs[0].pid, offset)
        stack.stop()

        if "replication" in stages:
            say(f"   machine quiet after {wait_quiet()} s")
            replication(args, admin_token, pairs[:offset_warm], results)

        if "redis" in stages:
            say(f"   machine quiet after {wait_quiet()} s")
            redis_stage(args, admin_token, pairs[:offset_warm], results)

        if "drain" in stages:
            with app.app_context():
                drain_api = Stack(env, LOG_DIR)
                api2 = Api(drain_api.start_api(workers=1))
                try:
                    n = int(50_000 * scale)
                    say(f"5. consumer drain: {n} preloaded messages, one consumer")
                    results["drain_1"] = drain(env, engine, api2, admin_token, n, 1)
                    say(f"   {results['drain_1']}")
                    say(f"   {n} preloaded messages, two consumers")
                    results["drain_2"] = drain(env, engine, api2, admin_token, n, 2)
                    say(f"   {results['drain_2']}")
                finally:
                    drain_api.stop()
    finally:
        stack.stop()
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(results, indent=2))
    if full:
        table = markdown(results)
        print(table)
        if not args.quick:
            write_head(RESULTS, table)
    else:
        print(json.dumps(results, indent=2))
    if "replication" in results:
        section = replication_markdown(results)
        print(section)
        if not args.quick:
            write_section(RESULTS, "replication", section)
    if "streams" in results:
        section = streams_markdown(results)
        print(section)
        if not args.quick:
            write_section(RESULTS, "streams", section)
    if "redis" in results:
        section = redis_markdown(results)
        print(section)
        if not args.quick:
            write_section(RESULTS, "redis", section)


def throughput(
    args: argparse.Namespace,
    api: Api,
    admin_token: str,
    pairs: list[tuple[str, str]],
    results: dict[str, Any],
    api_pid: int,
) -> None:
    say(f"2. issue throughput: distinct users, stock never runs out, {args.connections} connections")
    results["issue"] = issue_run(args, api, admin_token, pairs, results["ceiling"], args.connections, api_pid, "")


def crowd(
    args: argparse.Namespace,
    api: Api,
    admin_token: str,
    pairs: list[tuple[str, str]],
    results: dict[str, Any],
    api_pid: int,
) -> None:
    """Ceiling and issue again at a flash sale's crowd: more connections, so bigger batches."""
    n = args.crowd_connections
    say(f"2b. crowd: GET /health, then the issue run, at {n} connections")
    ceiling = wrk(api.base + "/health", "health.lua", args.seconds, n, api_pid=api_pid)
    say(f"   ceiling {ceiling['rps']:.0f} req/s")
    results["crowd"] = {
        "connections": n,
        "ceiling": ceiling,
        "issue": issue_run(args, api, admin_token, pairs, ceiling, n, api_pid, "-crowd"),
    }


def issue_run(
    args: argparse.Namespace,
    api: Api,
    admin_token: str,
    pairs: list[tuple[str, str]],
    ceiling: dict[str, Any],
    connections: int,
    api_pid: int,
    tag: str,
    consumers: Sequence[int] = (),
) -> dict[str, Any]:
    tokens = write_tokens(LOG_DIR / f"tokens-throughput{tag}.txt", pairs)
    big = api.create_coupon(admin_token, 10_000_000)
    before = grouping(api.base)
    issue = wrk(
        api.base,
        "issue.lua",
        args.seconds,
        connections,
        {"TOKENS": str(tokens), "COUPON_ID": big["id"]},
        api_pid=api_pid,
        consumers=consumers,
    )
    issue["ratio_to_ceiling"] = round(issue["rps"] / ceiling["rps"], 3)
    issue["coupon_id"] = big["id"]
    issue["grouping"] = grouping(api.base, since=before)
    ceiling_cpu, issue_cpu = ceiling.get("cpu_us_per_request", {}), issue.get("cpu_us_per_request", {})
    if ceiling_cpu.get("api") and issue_cpu:
        # CPU per request, API plus the Redis and Kafka it drives: the throughput ratio a quiet box would give.
        def total(cpu: dict[str, float]) -> float:
            return sum(v for k, v in cpu.items() if k != "api_sys")

        issue["cpu_ratio_to_ceiling"] = round(total(ceiling_cpu) / total(issue_cpu), 3)
    say(
        f"   {issue['rps']:.0f} req/s, ratio {issue['ratio_to_ceiling']}, statuses {issue.get('status')},"
        f" grouping {issue['grouping']}, cpu µs/request {issue.get('cpu_us_per_request')}"
        f" vs ceiling {ceiling.get('cpu_us_per_request')}, cpu ratio {issue.get('cpu_ratio_to_ceiling')}"
    )
    return issue


def grouping(base: str, since: dict[str, float] | None = None) -> dict[str, float]:
    """Mean requests per gate round trip and per Kafka record, from the API's own /metrics (since an earlier
    reading, when given)."""
    import requests

    text = requests.get(base + "/metrics", timeout=10).text
    since = since or {}
    out: dict[str, float] = {}
    for name, label in (
        ("coupon_gate_batch_size", "per_gate_call"),
        ("coupon_kafka_record_events", "per_kafka_record"),
    ):
        total = sum(float(v) for v in re.findall(rf"^{name}_sum(?:{{[^}}]*}})? (\S+)$", text, re.M))
        count = sum(float(v) for v in re.findall(rf"^{name}_count(?:{{[^}}]*}})? (\S+)$", text, re.M))
        out[f"{name}_sum"], out[f"{name}_count"] = total, count
        total -= since.get(f"{name}_sum", 0.0)
        count -= since.get(f"{name}_count", 0.0)
        out[label] = round(total / count, 1) if count else 0.0
    return out


def check_throughput_run(issue: dict[str, Any], connections: int, engine: sa.Engine) -> None:
    big = {"id": issue["coupon_id"]}
    accepted = issue["status"]["accepted"]
    rdb = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    # wrk does not say who was accepted; Redis' participants do, and the invariants tie them to the DB.
    # Requests in flight when wrk stopped were accepted but their replies not counted: at most one per connection.
    wait_drained(engine, big["id"], accepted, timeout=300)
    wait_for(
        lambda: rdb.zcard(keys.participants(big["id"])) == issued_rows(engine, big["id"]),
        60,
        "the last in-flight requests to drain",
    )
    holders = rdb.zrange(keys.participants(big["id"]), 0, -1)
    assert accepted <= len(holders) <= accepted + connections, (len(holders), accepted)
    check_invariants(engine, rdb, big["id"], holders)


def run_openloop(api: Api, coupon_id: str, tokens: Path, seconds: float, rate: int = 1000) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.openloop",
            "--base",
            api.base,
            "--coupon",
            coupon_id,
            "--tokens",
            str(tokens),
            "--rate",
            str(rate),
            "--seconds",
            str(seconds),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def openloop(args: argparse.Namespace, api: Api, admin_token: str, ol_pairs: list[tuple[str, str]]) -> dict[str, Any]:
    ol_tokens = write_tokens(LOG_DIR / "tokens-openloop.txt", ol_pairs)
    ol_coupon = api.create_coupon(admin_token, 10_000_000)
    result = run_openloop(api, ol_coupon["id"], ol_tokens, min(10, args.seconds))
    say(f"   {result}")
    return result


def consumer_pids(stack: Stack) -> list[int]:
    return [p.pid for p in stack.procs if p.name == "consumer" and p.alive()]


def consumer_with_backlog(
    stack: Stack, env: dict[str, str], engine: sa.Engine, api: Api, admin_token: str, events: int
) -> backlog.DrainWatch:
    """Stop the stack's consumers, preload `events` on the issue topic, start one consumer again (as `make run`
    starts it), and return once its first backlog rows are in: the drain is under way."""
    for proc in stack.procs:
        if proc.name == "consumer" and proc.alive():
            proc.stop()
    coupon = api.create_coupon(admin_token, events)
    began = time.monotonic()
    backlog.preload(KAFKA, env["KAFKA_ISSUE_TOPIC"], coupon["id"], events)
    say(f"   {events:,} events preloaded in {time.monotonic() - began:.1f} s; starting the consumer")
    watch = backlog.DrainWatch(engine, coupon["id"], events)
    stack.start_consumer(wait_assigned=False)
    watch.start()
    assert watch.landed.wait(120), "the consumer wrote no backlog row within 120 s"
    return watch


def backlog_progress(watch: backlog.DrainWatch, started: float, ended: float) -> dict[str, Any]:
    """How much of the backlog the consumer drained beside the load (started..ended), and when it finished."""
    watch.join(600)
    assert watch.done_at is not None, f"the backlog did not drain: {watch.rows} of {watch.total} rows"
    during = watch.rows_at(ended) - watch.rows_at(started)
    return {
        "events": watch.total,
        "rows_before_load": watch.rows_at(started),
        "rows_during_load": during,
        "rows_per_s_during_load": round(during / max(ended - started, 0.001), 1),
        "drained_s_after_load_began": round(watch.done_at - started, 2),
    }


def steady_cost(
    args: argparse.Namespace, stack: Stack, engine: sa.Engine, api: Api, admin_token: str, pairs: list[tuple[str, str]]
) -> dict[str, Any]:
    """CPU per issued coupon end to end: wrk on the issue endpoint with the consumer writing beside it, from the first
    request until the last accepted row is in the DB, summed over the API, consumer, Redis, Kafka and MariaDB."""
    say(f"2d. cost per coupon, steady: wrk {args.seconds} s on the issue endpoint, the consumer live")
    api_pid = stack.procs[0].pid
    consumers = consumer_pids(stack)
    tokens = write_tokens(LOG_DIR / "tokens-steady.txt", pairs)
    coupon = api.create_coupon(admin_token, 10_000_000)
    before = cpu_snapshot(api_pid, consumers)
    run = wrk(api.base, "issue.lua", args.seconds, args.connections, {"TOKENS": str(tokens), "COUPON_ID": coupon["id"]})
    rdb = redis.Redis.from_url(REDIS_URL)
    wait_for(
        lambda: rdb.zcard(keys.participants(coupon["id"])) == issued_rows(engine, coupon["id"]),
        300,
        "the consumer to write every accepted request",
        interval=0.05,
    )
    result = cost_per_coupon(before, cpu_snapshot(api_pid, consumers), issued_rows(engine, coupon["id"]))
    result["rps"] = run["rps"]
    say(f"   {result}")
    return result


def cost_per_coupon(before: dict[str, float], after: dict[str, float], coupons: int) -> dict[str, Any]:
    """CPU µs per issued coupon, per process group and in all (the API's kernel share is part of "api")."""
    # The three-broker cluster of the replication stage (and the redis stage's Redis Cluster) may be up beside the
    # single services; nothing here uses them.
    per = {k: round(1e6 * (after[k] - before.get(k, 0.0)) / max(coupons, 1), 1) for k in after if k not in _BESIDE}
    total = round(sum(v for k, v in per.items() if k != "api_sys"), 1)
    return {"coupons": coupons, "us_per_coupon": per, "total_us_per_coupon": total}


def account_clients(api: Api, seconds: float, login: bool) -> subprocess.Popen:
    """Start bench/accounts.py and return once all its clients are connected."""
    argv = [
        sys.executable,
        "-m",
        "bench.accounts",
        "--base",
        api.base,
        "--clients",
        str(ACCOUNT_CLIENTS),
        "--seconds",
        str(seconds),
    ] + (["--login"] if login else [])
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "started", "bench.accounts did not start"
    return proc


def finish(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"bench.accounts exited {proc.returncode}"
    return json.loads(out.strip().splitlines()[-1])


def accounts(api: Api, admin_token: str, acc_pairs: list[tuple[str, str]], results: dict[str, Any]) -> None:
    """Issue latency alone and beside a signup/login rush (password hashing must never block a worker's loop),
    then the rush's own throughput."""
    seconds = 10
    say(f"6. accounts: (a) issue open loop 1,000 req/s for {seconds} s, alone")
    coupon = api.create_coupon(admin_token, 10_000_000)
    alone = run_openloop(
        api, coupon["id"], write_tokens(LOG_DIR / "tokens-accounts-a.txt", acc_pairs[:10_000]), seconds
    )
    say(f"   {alone}")
    say(f"   (b) the same while {ACCOUNT_CLIENTS} clients sign up and log in as fast as they can")
    # The rush starts first and outlasts the open loop, so every issue request of (b) meets it.
    rush_proc = account_clients(api, seconds + 3, login=True)
    beside = run_openloop(
        api, coupon["id"], write_tokens(LOG_DIR / "tokens-accounts-b.txt", acc_pairs[10_000:20_000]), seconds
    )
    rush = finish(rush_proc, 120)
    say(f"   {beside}")
    say(f"   rush: {rush}")
    say(f"   (c) signups alone, {ACCOUNT_CLIENTS} concurrent clients, {seconds} s")
    signups = finish(account_clients(api, seconds, login=False), 120)
    say(f"   {signups}")
    results["accounts"] = {
        "issue_alone": alone,
        "issue_beside_rush": beside,
        "rush": rush,
        "signups": signups,
        "p99_ratio": round(beside["p99_ms"] / max(alone["p99_ms"], 0.001), 2),
    }
    say(
        f"   issue p99 {alone['p99_ms']} ms alone, {beside['p99_ms']} ms beside the rush:"
        f" ratio {results['accounts']['p99_ratio']} (target ≤ 3)"
    )


def flash_sale(
    api: Api,
    admin_token: str,
    sale_pairs: list[tuple[str, str]],
    results: dict[str, Any],
    engine: sa.Engine,
    stack: Stack,
) -> None:
    flash_users = len(sale_pairs)
    say(f"4. flash sale: {flash_users} users at once, quantity 1,000")
    flash = api.create_coupon(admin_token, 1000)
    timing: dict[str, float] = {}
    api_pid, consumers = stack.procs[0].pid, consumer_pids(stack)
    cpu_before = cpu_snapshot(api_pid, consumers)
    # Watch the DB during the burst: the rows may land long before the last of 10,000 replies is read.
    with ThreadPoolExecutor(max_workers=1) as pool:
        landed = pool.submit(_time_until_rows, engine, flash["id"], 1000, 300)
        replies = burst(api.base, [("POST", f"/api/coupon/{flash['id']}/issue", t) for _, t in sale_pairs], timing)
        # From the moment all requests were fired (their connections were opened before that).
        db_s = landed.result() - timing["fired"]
    burst_s = timing["done"] - timing["fired"]
    # Every reply read and every row in: what the whole sale cost, per coupon it gave out.
    cost = cost_per_coupon(cpu_before, cpu_snapshot(api_pid, consumers), issued_rows(engine, flash["id"]))
    codes: dict[str, int] = {}
    for r in replies:
        codes[f"{r[0]} {r[1] or ''}".strip()] = codes.get(f"{r[0]} {r[1] or ''}".strip(), 0) + 1
    winners = [u for (u, _), r in zip(sale_pairs, replies) if r[0] == 202]
    counts = check_invariants(engine, redis.Redis.from_url(REDIS_URL, decode_responses=True), flash["id"], winners)
    results["flash_sale"] = {
        "users": flash_users,
        "quantity": 1000,
        "statuses": codes,
        "five_xx": sum(n for k, n in codes.items() if k.startswith(("5", "0"))),
        "latency_ms": percentiles([r[3] for r in replies if r[0]]),
        "seconds_until_last_reply": round(burst_s, 2),
        "seconds_until_db_has_all_rows": round(db_s, 2),
        "exact": counts["issued"] == 1000 and len(winners) == 1000,
        "cost": cost,
    }
    say(f"   {results['flash_sale']}")


def raise_fd_limit(needed: int) -> int:
    """Raise the soft NOFILE limit (toward the hard one) when `needed` descriptors would not fit; the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        new = needed if hard == resource.RLIM_INFINITY else min(max(needed, soft), hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        say(f"ulimit -n: soft {soft} -> {new} (hard {hard}) for {needed} descriptors")
        soft = new
    if soft < needed:
        say(f"WARNING: ulimit -n allows {soft} descriptors, the streams stage wants {needed}")
    return soft


class SoldOutWatch(threading.Thread):
    """Polls the gate's reservation counter every 2 ms: the epoch second at which it reached the coupon's total."""

    def __init__(self, coupon_id: str, quantity: int, timeout: float = 300) -> None:
        super().__init__(daemon=True)
        self.key, self.quantity, self.timeout = keys.issued(coupon_id), quantity, timeout
        self.started = time.time()
        self.at: float | None = None

    def run(self) -> None:
        rdb = redis.Redis.from_url(REDIS_URL)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if int(rdb.get(self.key) or 0) >= self.quantity:
                self.at = time.time()
                return
            time.sleep(0.002)

    def seconds(self) -> float | None:
        return None if self.at is None else round(self.at - self.started, 3)


def stream_crowd(api: Api, coupon_id: str, tokens: Path, count: int, hold: bool = False) -> subprocess.Popen:
    """bench/streams.py with `count` streams on the coupon, pinned beside wrk; returns once all got their first state."""
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    argv = [*pin, sys.executable, "-m", "bench.streams", "--base", api.base, "--coupon", coupon_id]
    argv += ["--tokens", str(tokens), "--count", str(count), "--timeout", "240", *(["--hold"] if hold else [])]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    started = time.monotonic()
    ready = proc.stdout.readline().split()
    assert ready[:3] == ["ready", str(count), "0"], f"bench.streams: {ready}"
    say(f"   {count} streams open and at their first state after {time.monotonic() - started:.1f} s")
    return proc


def crowd_result(proc: subprocess.Popen, sold_out_at: float | None) -> dict[str, Any]:
    """The streams' outcome: every one should have got sold-out; how long after the gate's last unit."""
    # communicate() reads while it waits: the client's report is larger than a pipe's buffer.
    if sold_out_at is None and proc.poll() is None:
        say("   not sold out: stopping the stream client")  # its streams would wait for a sold-out that never comes
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        say("   WARNING: streams still without sold-out a minute after it, stopping the client")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, f"bench.streams exited {proc.returncode}"
    res = json.loads(out.strip().splitlines()[-1])
    delays = [1000 * (t - sold_out_at) for t in res["final_at"]] if sold_out_at else []
    return {
        "streams": res["count"],
        "connected": res["connected"],
        "errors": res["errors"],
        "finals": res["finals"],
        "ended_without_final": res["ended_without_final"],
        "stock_events": res["stock_events"],
        "out_of_order": res["out_of_order"],
        "client_cpu_s": res["cpu_s_after_ready"],
        "sold_out_after_last_unit_ms": percentiles(delays) if delays else None,
    }


def streams(
    args: argparse.Namespace,
    api: Api,
    admin_token: str,
    pairs: list[tuple[str, str]],
    results: dict[str, Any],
    api_pid: int,
    offset: int,
) -> None:
    """A flash sale with and without `--streams` open live-stock streams on the coupon being sold: issue throughput
    (wrk, as in the issue stage) and p99 (open loop at 1,000 req/s), then how long after the gate's last unit every
    stream had its sold-out event. Same coupon sizes, same load generators, one run."""
    n, quantity = args.streams, args.stream_sale_quantity
    wrk_tokens = write_tokens(LOG_DIR / "tokens-streams-wrk.txt", pairs[:offset])
    if not quantity:
        # Sold out part-way through each run (a sale, then its sold-out replies), whatever this box manages today.
        probe = api.create_coupon(admin_token, 10_000_000)
        rate = wrk(api.base, "issue.lua", 3, args.connections, {"TOKENS": str(wrk_tokens), "COUPON_ID": probe["id"]})
        quantity = max(1000, round(0.25 * rate["rps"] * args.seconds, -2))
        say(
            f"   calibration: {rate['rps']:.0f} req/s, so {quantity:.0f} units sell out part-way through {args.seconds} s"
        )
    quantity = int(quantity)
    ol_tokens = write_tokens(LOG_DIR / "tokens-streams-openloop.txt", pairs[:10_000])
    stream_tokens = write_tokens(LOG_DIR / "tokens-streams.txt", pairs[-n:])
    out: dict[str, Any] = {"streams": n, "quantity_wrk": quantity, "quantity_openloop": 5000}

    def wrk_sale(with_streams: bool) -> dict[str, Any]:
        coupon = api.create_coupon(admin_token, quantity)
        crowd = stream_crowd(api, coupon["id"], stream_tokens, n) if with_streams else None
        watch = SoldOutWatch(coupon["id"], quantity)
        watch.start()
        run = wrk(
            api.base,
            "issue.lua",
            args.seconds,
            args.connections,
            {"TOKENS": str(wrk_tokens), "COUPON_ID": coupon["id"]},
            api_pid=api_pid,
        )
        watch.join(60)
        run["sold_out_s"] = watch.seconds()
        run["sale_rps"] = round(quantity / run["sold_out_s"], 1) if run["sold_out_s"] else None
        if crowd:
            run["crowd"] = crowd_result(crowd, watch.at)
        return run

    def openloop_sale(with_streams: bool) -> dict[str, Any]:
        coupon = api.create_coupon(admin_token, 5000)
        crowd = stream_crowd(api, coupon["id"], stream_tokens, n) if with_streams else None
        watch = SoldOutWatch(coupon["id"], 5000)
        watch.start()
        run = run_openloop(api, coupon["id"], ol_tokens, min(10, args.seconds))
        watch.join(60)
        run["sold_out_s"] = watch.seconds()
        if crowd:
            run["crowd"] = crowd_result(crowd, watch.at)
        return run

    def fanout_only() -> dict[str, Any]:
        """The streams' own cost, without a sale: the gate's counter moved every 50 ms (an event per stream per
        tick), the API's CPU per delivered event. CPU per event moves far less with the neighbours than req/s."""
        coupon = api.create_coupon(admin_token, 10_000_000)
        crowd = stream_crowd(api, coupon["id"], stream_tokens, n, hold=True)
        rdb = redis.Redis.from_url(REDIS_URL)
        key = keys.issued(coupon["id"])
        before, started = cpu_snapshot(api_pid), time.monotonic()
        while time.monotonic() - started < 5:
            rdb.incr(key)
            time.sleep(0.05)
        time.sleep(0.5)  # the last tick's events
        after = cpu_snapshot(api_pid)
        crowd.send_signal(signal.SIGTERM)
        res = crowd_result(crowd, time.time())
        events = max(res["stock_events"] - n, 1)  # each stream's first state came before the window
        return {
            "events": events,
            "seconds": round(time.monotonic() - started, 2),
            "api_cpu_us_per_event": round(1e6 * (after["api"] - before["api"]) / events, 1),
            "api_sys_us_per_event": round(1e6 * (after["api_sys"] - before["api_sys"]) / events, 1),
            "redis_cpu_us_per_event": round(1e6 * (after.get("redis", 0) - before.get("redis", 0)) / events, 2),
            "client_cpu_s": res["client_cpu_s"],
        }

    for name, fn, label in (
        ("fanout", fanout_only, f"7a. {n} streams, the gate moving every 50 ms, no sale: API CPU per delivered event"),
        (
            "wrk_without",
            lambda: wrk_sale(False),
            f"7b. wrk sale of {quantity} units, {args.connections} connections, no streams",
        ),
        ("wrk_with", lambda: wrk_sale(True), f"7c. the same with {n} open streams on the coupon"),
        ("openloop_without", lambda: openloop_sale(False), "7d. open loop 1,000 req/s on 5,000 units, no streams"),
        ("openloop_with", lambda: openloop_sale(True), f"7e. the same with {n} open streams on the coupon"),
    ):
        say(f"   machine quiet after {wait_quiet()} s")
        say(label)
        load = os.getloadavg()[0]
        out[name] = fn()
        # Other work on the box moves these numbers: the 1-minute load average around each run says how much.
        out[name]["load_avg_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]
        say(f"   {out[name]}")
    a, b = out["wrk_without"], out["wrk_with"]
    out["rps_ratio"] = round(b["rps"] / a["rps"], 3)
    out["sale_rps_ratio"] = round(b["sale_rps"] / a["sale_rps"], 3) if a.get("sale_rps") and b.get("sale_rps") else None
    out["p99_ratio_openloop"] = round(out["openloop_with"]["p99_ms"] / max(out["openloop_without"]["p99_ms"], 0.001), 2)
    results["streams"] = out
    say(
        f"   with {n} streams: wrk {a['rps']:.0f} -> {b['rps']:.0f} req/s (ratio {out['rps_ratio']}), selling"
        f" {quantity} units {a['sold_out_s']} -> {b['sold_out_s']} s; open-loop p99 {out['openloop_without']['p99_ms']}"
        f" -> {out['openloop_with']['p99_ms']} ms; sold-out reached every stream"
        f" {b['crowd']['sold_out_after_last_unit_ms']} ms after the last unit (wrk run),"
        f" {out['openloop_with']['crowd']['sold_out_after_last_unit_ms']} ms (open loop)"
    )


def replication(
    args: argparse.Namespace, admin_token: str, pairs: list[tuple[str, str]], results: dict[str, Any]
) -> None:
    """The issue endpoint, alone, on the single broker (topic RF 1) and on the three-broker cluster (RF 3,
    min.insync.replicas 2), one after the other in this run: same users, same API, same wrk load; each on a
    fresh API after a 5 s warm-up. The producer is acks=all + idempotent in both."""
    cluster = kafka_cluster_bootstrap()
    variants = [
        ("single broker, RF 1", KAFKA, 1, 1),
        ("3 brokers, RF 3, min ISR 2", cluster, 3, 2),
    ]
    tokens = write_tokens(LOG_DIR / "tokens-replication.txt", pairs)
    out: dict[str, Any] = {
        "connections": args.connections,
        "seconds": args.seconds,
        "runs": [],
        "load_before": round(os.getloadavg()[0], 2),
    }
    for label, bootstrap, rf, min_isr in variants:
        env = env_for(uuid.uuid4().hex[:8])
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=bootstrap,
            KAFKA_REPLICATION_FACTOR=str(rf),
            KAFKA_MIN_INSYNC_REPLICAS=str(min_isr),
        )
        say(f"6. replication: {label} ({bootstrap}), 5 s warm-up, then {args.seconds} s of issue requests")
        run = issue_alone(args, env, admin_token, tokens, results["workers"])
        run.update(label=label, bootstrap=bootstrap, replication_factor=rf, min_insync_replicas=min_isr)
        out["runs"].append(run)
    single, replicated = out["runs"]
    out["load_after"] = round(os.getloadavg()[0], 2)
    out["rps_ratio"] = round(replicated["rps"] / single["rps"], 3)
    out["p99_ratio"] = round(replicated["latency"]["p99"] / max(single["latency"]["p99"], 0.001), 2)
    results["replication"] = out


def replication_markdown(r: dict[str, Any]) -> str:
    rep = r["replication"]
    rows = [
        "## Replicated Kafka: RF 3 + acks=all on three brokers vs RF 1 on one",
        "",
        f"{r['date']} on {r['machine']}; {r['workers']} gunicorn gevent workers; wrk, {rep['connections']} connections,"
        f" {rep['seconds']} s per run after a 5 s warm-up, the issue endpoint alone (no consumer), distinct users, stock"
        " never runs out. Both brokers' setups on this same 2-core VM as the API and wrk (the three-broker cluster is"
        " three JVMs of 320 MB heap); load average"
        f" {rep.get('load_before', '?')} before, {rep.get('load_after', '?')} after. Command: `"
        + REPLICATION_COMMAND
        + "` (or `make bench`).",
        "",
        "| Kafka | issue req/s | p50 ms | p99 ms | statuses | requests per Kafka record |"
        " CPU µs/request: API; Redis; broker(s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in rep["runs"]:
        lat = run.get("latency", {})
        rows.append(
            f"| {run['label']} | {run['rps']:.0f} | {lat.get('p50')} | {lat.get('p99')} | {run.get('status')} |"
            f" {run.get('grouping', {}).get('per_kafka_record', '?')} | {_replication_cpu(run)} |"
        )
    rows.append("")
    rows.append(f"RF 3 / RF 1: throughput ×{rep['rps_ratio']}, p99 ×{rep['p99_ratio']}.")
    return "\n".join(rows) + "\n"


def _replication_cpu(run: dict[str, Any]) -> str:
    cpu = run.get("cpu_us_per_request", {})
    brokers = cpu.get("kafka" if run["replication_factor"] == 1 else "kafka_cluster", 0)
    return f"{cpu.get('api', 0):.0f}; {cpu.get('redis', 0):.0f}; {brokers:.0f}"


def _redis_cluster_script(command: str) -> subprocess.CompletedProcess[str]:
    """scripts/redis_cluster.sh COMMAND for the redis stage's cluster: its own ports, 3 masters with a replica each."""
    env = dict(
        os.environ, REDIS_CLUSTER_PORT=str(REDIS_CLUSTER_PORT), REDIS_CLUSTER_MASTERS="3", REDIS_CLUSTER_REPLICAS="1"
    )
    script = str(ROOT / "scripts" / "redis_cluster.sh")
    return subprocess.run([script, command], capture_output=True, text=True, env=env, timeout=300)


def _redis_answers(port: int) -> bool:
    """Whether a Redis answers PING on 127.0.0.1:port."""
    try:
        with redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5) as node:
            return bool(node.ping())
    except (redis.RedisError, OSError):
        return False


def redis_cluster_up() -> tuple[str, bool]:
    """The redis stage's Redis Cluster, up and ok: its REDIS_CLUSTER_NODES list, and whether this run started it (only
    then is it stopped afterwards, as `make bench` does with the Kafka cluster)."""
    ports = range(REDIS_CLUSTER_PORT, REDIS_CLUSTER_PORT + REDIS_CLUSTER_SIZE)
    started = False
    if _redis_cluster_script("status").returncode != 0:
        # Not a healthy 3 + 3 cluster. If anything answers on its ports (a cluster without replicas started with
        # the same REDIS_CLUSTER_PORT, say), `up` would try to grow it and `down` would then stop someone's nodes.
        busy = [port for port in ports if _redis_answers(port)]
        if busy:
            raise RuntimeError(
                f"ports {busy} answer but are not a healthy cluster of 3 masters + 3 replicas: stop it"
                f" (REDIS_CLUSTER_PORT={REDIS_CLUSTER_PORT} scripts/redis_cluster.sh down) or set BENCH_REDIS_CLUSTER_PORT"
            )
        say(f"   starting a Redis Cluster, 3 masters + 3 replicas, on 127.0.0.1:{ports[0]}..{ports[-1]}")
        started = True
        up = _redis_cluster_script("up")
        if up.returncode != 0:
            _redis_cluster_script("down")  # whatever of it did start
            raise RuntimeError(f"scripts/redis_cluster.sh up failed:\n{up.stdout}{up.stderr}")
    nodes = _redis_cluster_script("nodes").stdout.strip().splitlines()[-1]
    return nodes, started


def redis_cluster_down() -> None:
    """Stop the redis stage's cluster (the nodes redis_cluster.sh started there; a cluster run by others stays)."""
    down = _redis_cluster_script("down")
    if down.returncode != 0:
        say(f"WARNING: scripts/redis_cluster.sh down failed:\n{down.stdout}{down.stderr}")
    else:
        say(f"   Redis Cluster on {REDIS_CLUSTER_PORT}.. stopped")


def issue_alone(
    args: argparse.Namespace,
    env: dict[str, str],
    admin_token: str,
    tokens: Path,
    workers: int,
    probe: Callable[[], dict[str, float]] | None = None,
) -> dict[str, Any]:
    """One run of the issue endpoint alone (no consumer), as the replication and redis stages run it: a fresh API
    on env, 5 s of wrk to warm it up, then args.seconds of wrk on a 10,000,000-unit coupon. With probe, also how
    much the probe's counters moved during the measured part. Its topics are made on env's brokers, with env's
    replication."""
    min_isr = env.get("KAFKA_MIN_INSYNC_REPLICAS")
    ensure_topics(
        env["KAFKA_BOOTSTRAP_SERVERS"],
        {env["KAFKA_ISSUE_TOPIC"]: 6, env["KAFKA_DLQ_TOPIC"]: 1},
        replication_factor=int(env.get("KAFKA_REPLICATION_FACTOR", "1")),
        min_insync_replicas=int(min_isr) if min_isr else None,
    )
    stack = Stack(env, LOG_DIR)
    try:
        api = Api(stack.start_api(workers=workers))
        warm = api.create_coupon(admin_token, 10_000_000)
        wrk(api.base, "issue.lua", 5, args.connections, {"TOKENS": str(tokens), "COUPON_ID": warm["id"]})
        big = api.create_coupon(admin_token, 10_000_000)
        before = grouping(api.base)
        load = os.getloadavg()[0]
        counters = probe() if probe else {}
        run = wrk(
            api.base,
            "issue.lua",
            args.seconds,
            args.connections,
            {"TOKENS": str(tokens), "COUPON_ID": big["id"]},
            api_pid=stack.procs[0].pid,
        )
        if probe:
            after = probe()
            run["counters"] = {k: after[k] - counters.get(k, 0.0) for k in after}
        run["grouping"] = grouping(api.base, since=before)
        run["load_avg_1m"] = [round(load, 2), round(os.getloadavg()[0], 2)]
    finally:
        stack.stop()
    run["coupon_ids"] = [warm["id"], big["id"]]
    lat = run.get("latency", {})
    say(
        f"   {run['rps']:.0f} req/s, p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms, statuses {run.get('status')},"
        f" requests per gate call {run['grouping']['per_gate_call']}, cpu µs/request {run.get('cpu_us_per_request')},"
        f" counters {run.get('counters')}"
    )
    return run


def _forget_coupons(client: redis.Redis | redis.RedisCluster, coupon_ids: Sequence[str]) -> None:
    """Delete a run's gate state: without a consumer every hold stays open, and the next runs (the AOF rewrite among
    them) should meet the same dataset as the first. One coupon's keys share a hash slot, so one DEL each."""
    for coupon_id in coupon_ids:
        client.delete(*keys.state_keys(coupon_id))


def _pair_ratios(runs: list[dict[str, Any]], key: str, base: Any, test: Any) -> dict[str, Any]:
    """test ÷ base for throughput and p99 in each alternating pair (the i-th base run with the i-th test run), and
    their medians: the box's drift between pairs cancels within one."""
    bases = [r for r in runs if r[key] == base]
    tests = [r for r in runs if r[key] == test]
    pairs = [
        {
            "rps": round(t["rps"] / max(b["rps"], 0.001), 3),
            "p99": round(t["latency"]["p99"] / max(b["latency"]["p99"], 0.001), 2),
        }
        for b, t in zip(bases, tests)
    ]
    return {
        "pair_ratios": pairs,
        "median_rps_ratio": round(statistics.median(p["rps"] for p in pairs), 3) if pairs else None,
        "median_p99_ratio": round(statistics.median(p["p99"] for p in pairs), 2) if pairs else None,
    }


def _wait_calls(ports: Sequence[int]) -> dict[str, float]:
    """WAIT commands the cluster's nodes have run so far (INFO commandstats): shows the acks=1 runs really waited."""
    calls = 0.0
    for port in ports:
        with redis.Redis(port=port, socket_timeout=2) as node:
            calls += node.info("commandstats").get("cmdstat_wait", {}).get("calls", 0)
    return {"wait_calls": calls}


def replica_acks(args: argparse.Namespace, admin_token: str, tokens: Path, workers: int) -> dict[str, Any]:
    """The issue endpoint alone on a Redis Cluster with a replica per master, REDIS_MIN_REPLICA_ACKS 0 and 1
    alternating (0, 1, 0, 1, ...): what the WAIT at the end of every gate pipeline costs."""
    nodes, started = redis_cluster_up()
    ports = range(REDIS_CLUSTER_PORT, REDIS_CLUSTER_PORT + REDIS_CLUSTER_SIZE)
    timeout_ms = os.environ.get("REDIS_REPLICA_ACK_TIMEOUT_MS", "100")
    out: dict[str, Any] = {"nodes": nodes, "started_by_bench": started, "ack_timeout_ms": int(timeout_ms), "runs": []}
    client = build_redis("", cluster_nodes=nodes)
    try:
        plan = [0, 1] * args.redis_pairs
        for i, acks in enumerate(plan, 1):
            env = env_for(uuid.uuid4().hex[:8])
            env.pop("REDIS_CLUSTER_URL", None)  # it would win over the node list
            env.update(
                REDIS_CLUSTER_NODES=nodes, REDIS_MIN_REPLICA_ACKS=str(acks), REDIS_REPLICA_ACK_TIMEOUT_MS=timeout_ms
            )
            say(f"   machine quiet after {wait_quiet()} s")
            say(
                f"8a. redis: run {i}/{len(plan)}, Redis Cluster ({nodes}), REDIS_MIN_REPLICA_ACKS={acks}:"
                f" 5 s warm-up, then {args.seconds} s of issue requests"
            )
            run = issue_alone(args, env, admin_token, tokens, workers, probe=lambda: _wait_calls(ports))
            run["acks"] = acks
            _forget_coupons(client, run["coupon_ids"])
            out["runs"].append(run)
    finally:
        client.close()
        if started:
            redis_cluster_down()
    out.update(_pair_ratios(out["runs"], "acks", 0, 1))
    say(
        f"   acks=1 / acks=0 per pair {out['pair_ratios']}; median throughput ×{out['median_rps_ratio']},"
        f" p99 ×{out['median_p99_ratio']}"
    )
    return out


def _aof_settled(rdb: redis.Redis, appendonly: str) -> bool:
    """The AOF is as asked and no rewrite is running or queued (turning it on forks a child that writes the base)."""
    info = rdb.info("persistence")
    return (
        bool(info["aof_enabled"]) == (appendonly == "yes")
        and not info["aof_rewrite_in_progress"]
        and not info["aof_rewrite_scheduled"]
    )


def aof_mode(rdb: redis.Redis, appendonly: str, fsync: str, timeout: float = 120) -> None:
    """Switch the running Redis' persistence with CONFIG SET, and return once it has settled: the rewrite that
    turning the AOF on starts must not land in a measured run."""
    rdb.config_set("appendfsync", fsync)
    rdb.config_set("appendonly", appendonly)
    wait_for(lambda: _aof_settled(rdb, appendonly), timeout, f"appendonly {appendonly} to settle", interval=0.1)


def _aof_probe(rdb: redis.Redis) -> Callable[[], dict[str, float]]:
    """Counters of the single Redis an AOF run moves: fsyncs it had to wait for (everysec with a slow disk),
    AOF rewrites, and bytes the process sent to storage (/proc/PID/io; absent where that is unreadable)."""
    pid = int(rdb.info("server")["process_id"])

    def probe() -> dict[str, float]:
        info = rdb.info("persistence")
        out = {
            "aof_delayed_fsync": float(info.get("aof_delayed_fsync", 0)),
            "aof_rewrites": float(info.get("aof_rewrites", 0)),
        }
        try:
            io = dict(line.split(": ", 1) for line in Path(f"/proc/{pid}/io").read_text().splitlines())
            out["disk_write_bytes"] = float(io["write_bytes"])
        except (OSError, KeyError, ValueError):
            pass
        return out

    return probe


def aof_cost(args: argparse.Namespace, admin_token: str, tokens: Path, workers: int) -> dict[str, Any]:
    """The issue endpoint alone on the single Redis with its AOF off and on (everysec), alternating, switched at
    runtime; then one run with appendfsync always. The Redis' own settings are put back afterwards, whatever
    happens."""
    rdb = redis.Redis.from_url(REDIS_URL)
    original = {k: str(rdb.config_get(k)[k]) for k in ("appendonly", "appendfsync")}
    plan = [("off", "no", "everysec"), ("everysec", "yes", "everysec")] * args.redis_pairs
    if args.redis_always:
        plan.append(("always", "yes", "always"))
    out: dict[str, Any] = {"original": original, "runs": [], "always": None}
    try:
        probe = _aof_probe(rdb)
        for i, (label, appendonly, fsync) in enumerate(plan, 1):
            began = time.monotonic()
            aof_mode(rdb, appendonly, fsync)
            say(f"   appendonly {appendonly}, appendfsync {fsync}: settled after {time.monotonic() - began:.1f} s")
            say(f"   machine quiet after {wait_quiet()} s")
            say(
                f"8b. redis: run {i}/{len(plan)}, the single Redis with AOF {label}: 5 s warm-up, then {args.seconds} s"
                " of issue requests"
            )
            env = env_for(uuid.uuid4().hex[:8])
            for name in ("REDIS_CLUSTER_NODES", "REDIS_CLUSTER_URL"):
                env.pop(name, None)  # the standalone Redis of REDIS_URL, whatever the caller's shell says
            env["REDIS_MIN_REPLICA_ACKS"] = "0"  # it has no replica to wait for
            run = issue_alone(args, env, admin_token, tokens, workers, probe=probe)
            run["aof"] = label
            _forget_coupons(rdb, run["coupon_ids"])
            if label == "always":
                out["always"] = run
            else:
                out["runs"].append(run)
    finally:
        # What the services were started with (services.sh: appendonly yes, everysec) comes back even after a failure.
        rdb.config_set("appendfsync", original["appendfsync"])
        rdb.config_set("appendonly", original["appendonly"])
        try:
            wait_for(lambda: _aof_settled(rdb, original["appendonly"]), 120, "the AOF to settle", interval=0.1)
        except AssertionError as exc:
            say(f"WARNING: {exc}")
        say(f"   Redis set back to appendonly {original['appendonly']}, appendfsync {original['appendfsync']}")
    out.update(_pair_ratios(out["runs"], "aof", "off", "everysec"))
    always = out["always"]
    if always:
        # One run after the pairs, not alternated: against the medians of the pairs' runs.
        for label in ("off", "everysec"):
            runs = [r for r in out["runs"] if r["aof"] == label]
            out[f"always_vs_{label}"] = {
                "rps": round(always["rps"] / statistics.median(r["rps"] for r in runs), 3),
                "p99": round(always["latency"]["p99"] / statistics.median(r["latency"]["p99"] for r in runs), 2),
            }
    say(
        f"   AOF everysec / off per pair {out['pair_ratios']}; median throughput ×{out['median_rps_ratio']},"
        f" p99 ×{out['median_p99_ratio']}; always vs off {out.get('always_vs_off')}"
    )
    return out


def redis_stage(
    args: argparse.Namespace, admin_token: str, pairs: list[tuple[str, str]], results: dict[str, Any]
) -> None:
    """What two Redis safety settings cost the issue endpoint, alone: replica acks on a Redis Cluster with replicas
    (REDIS_MIN_REPLICA_ACKS 1 vs 0), and the single Redis' AOF (everysec vs off). Each setting alternates run by
    run, each run on a fresh API after a 5 s warm-up, as in the replication stage."""
    tokens = write_tokens(LOG_DIR / "tokens-redis.txt", pairs)
    out: dict[str, Any] = {
        "connections": args.connections,
        "seconds": args.seconds,
        "pairs": args.redis_pairs,
        "load_before": round(os.getloadavg()[0], 2),
    }
    out["cluster"] = replica_acks(args, admin_token, tokens, results["workers"])
    say(f"   machine quiet after {wait_quiet()} s")
    out["aof"] = aof_cost(args, admin_token, tokens, results["workers"])
    out["load_after"] = round(os.getloadavg()[0], 2)
    results["redis"] = out


def redis_markdown(r: dict[str, Any]) -> str:
    """The redis stage's own section of RESULTS.md (written by every run of the stage, `--only redis` too)."""
    red = r["redis"]
    cl, aof = red["cluster"], red["aof"]
    rows = [
        "## Redis safety settings: replica acks on Redis Cluster, AOF on the single Redis (stage `redis`)",
        "",
        f"{r['date']} on {r['machine']}; {r['workers']} gunicorn gevent workers; wrk, {red['connections']} connections,"
        f" {red['seconds']} s per run after a 5 s warm-up, each run on a fresh API; the issue endpoint alone (no"
        " consumer), distinct users, a 10,000,000-unit coupon (stock never runs out). Each setting alternates run by"
        f" run, {red['pairs']} pairs; the ratios are taken within a pair (the box drifts between pairs). Everything on"
        f" this same VM as the API and wrk; load average {red['load_before']} before, {red['load_after']} after."
        f" Command: `{REDIS_COMMAND}` (or `make bench`).",
        "",
        f"**Replica acks** (`REDIS_MIN_REPLICA_ACKS`, `REDIS_REPLICA_ACK_TIMEOUT_MS={cl['ack_timeout_ms']}`): a Redis"
        f" Cluster of 3 masters + 3 replicas ({cl['nodes']},"
        f" {'started by this run' if cl['started_by_bench'] else 'already up'}); with acks 1 every gate pipeline"
        " ends with a `WAIT 1` per master it wrote to. The Redis column is the six nodes together.",
        "",
        "| run | acks | issue req/s | p50 ms | p99 ms | statuses | requests per gate round trip | WAITs |"
        " CPU µs/request: API; Redis (6 nodes) | load avg 1 min before → after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, run in enumerate(cl["runs"], 1):
        cpu = run.get("cpu_us_per_request", {})
        rows.append(
            f"| {i} | {run['acks']} | {run['rps']:.0f} | {run['latency']['p50']} | {run['latency']['p99']} |"
            f" {run.get('status')} | {run['grouping']['per_gate_call']} | {run['counters']['wait_calls']:.0f} |"
            f" {cpu.get('api', 0):.0f}; {_maybe(cpu.get('redis_cluster'))} | {_load(run)} |"
        )
    rows += [
        "",
        f"acks=1 / acks=0: throughput {_ratios(cl, 'rps')}; p99 {_ratios(cl, 'p99')}.",
        "",
        f"**AOF** on the single Redis of `make run` (`appendonly yes`, `appendfsync everysec`, as scripts/services.sh"
        " starts it) against no persistence, switched on the running Redis with `CONFIG SET` (each switch waits for"
        " the AOF rewrite that turning it on starts, then for a quiet machine)."
        f" Afterwards set back to appendonly {aof['original']['appendonly']}, appendfsync"
        f" {aof['original']['appendfsync']}. Disk: bytes the Redis process sent to storage (/proc/PID/io) per request.",
        "",
        "| run | AOF | issue req/s | p50 ms | p99 ms | statuses | requests per gate round trip |"
        " CPU µs/request: API; Redis | disk bytes/request | delayed fsyncs | AOF rewrites | load avg 1 min before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    runs = aof["runs"] + ([aof["always"]] if aof.get("always") else [])
    for i, run in enumerate(runs, 1):
        cpu, counters = run.get("cpu_us_per_request", {}), run.get("counters", {})
        disk = counters.get("disk_write_bytes")
        rows.append(
            f"| {i} | {run['aof']} | {run['rps']:.0f} | {run['latency']['p50']} | {run['latency']['p99']} |"
            f" {run.get('status')} | {run['grouping']['per_gate_call']} | {cpu.get('api', 0):.0f};"
            f" {_maybe(cpu.get('redis'))} | {_maybe(None if disk is None else disk / max(run['requests'], 1))} |"
            f" {counters.get('aof_delayed_fsync', 0):.0f} | {counters.get('aof_rewrites', 0):.0f} | {_load(run)} |"
        )
    rows += ["", f"AOF everysec / off: throughput {_ratios(aof, 'rps')}; p99 {_ratios(aof, 'p99')}."]
    if aof.get("always"):
        off, every = aof["always_vs_off"], aof["always_vs_everysec"]
        rows.append(
            f"`appendfsync always` (one run after the pairs, not alternated) against the medians of the off runs:"
            f" throughput ×{off['rps']}, p99 ×{off['p99']}; against everysec: ×{every['rps']}, ×{every['p99']}."
        )
    return "\n".join(rows) + "\n"


def _ratios(part: dict[str, Any], key: str) -> str:
    """'×a, ×b per pair (median ×m)' for a redis-stage comparison."""
    each = ", ".join(f"×{p[key]}" for p in part["pair_ratios"])
    return f"{each} per pair (median **×{part[f'median_{key}_ratio']}**)"


def _maybe(value: float | None) -> str:
    """A rounded figure, or ? where it was not measured (e.g. a cluster this run did not start has no pid files)."""
    return "?" if value is None else f"{value:.0f}"


def _load(run: dict[str, Any]) -> str:
    """The 1-minute load average before → after a run (other work on the box moves its numbers)."""
    return "→".join(str(x) for x in run.get("load_avg_1m", []))


def write_head(path: Path, text: str) -> None:
    """Replace what precedes the first <!-- section --> of path (the main table) with text; the sections stay (the
    Kafka failover one comes from the tests, not from this script)."""
    old = path.read_text() if path.exists() else ""
    sections = old[old.index("<!-- ") :] if "<!-- " in old else ""
    path.write_text(text + ("\n" + sections if sections else ""))


def write_section(path: Path, name: str, text: str) -> None:
    """Put text between <!-- name --> markers in path: replaces an earlier run's, else appends."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    old = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text}{end}\n"
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        new = old.rstrip("\n") + "\n\n" + block
    path.write_text(new)


def _cpu(stage: dict[str, Any]) -> str:
    cpu = stage.get("cpu_us_per_request", {})
    return f"{cpu.get('api', 0):.0f}; {cpu.get('redis', 0):.0f}; {cpu.get('kafka', 0):.0f}"


def _backlog(b: dict[str, Any]) -> str:
    return (
        f"{b['rows_during_load']:,} of the {b['events']:,}-event backlog written during the load"
        f" ({b['rows_per_s_during_load']:.0f} rows/s; {b['rows_before_load']:,} before it began), all of it"
        f" {b['drained_s_after_load_began']} s after the load began"
    )


def _draining_issue_rows(run: dict[str, Any] | None) -> list[str]:
    if not run:
        return []
    lat = run.get("latency", {})
    cpu = run.get("cpu_us_per_request", {})
    return [
        f"| issue while one consumer drains a backlog | {run['rps']:.0f} req/s (p50 {lat.get('p50')} ms, p99"
        f" {lat.get('p99')} ms); {_backlog(run['backlog'])} | |",
        f"| issue / ceiling **while the consumer drains** | **{run['ratio_to_ceiling']}** (CPU µs per request: API"
        f" {cpu.get('api', 0):.0f}, consumer {cpu.get('consumer', 0):.0f}, Redis {cpu.get('redis', 0):.0f}, Kafka"
        f" {cpu.get('kafka', 0):.0f}, MariaDB {cpu.get('mariadb', 0):.0f}) | |",
    ]


def _per_request_rows(r: dict[str, Any]) -> list[str]:
    """Issue 33's measures, each beside its target: a ratio to the starting commit, which `make bench-compare` takes
    (bench/compare.py holds the list, so the two reports name the same figures)."""
    rows = []
    for label, extract, target, lower_better in MEASURES:
        value = extract(r)
        if value is not None:
            bound = "≤" if lower_better else "≥"
            rows.append(f"| {label} | **{fmt(value)}** | {bound} ×{target} the base's (`make bench-compare`) |")
    return rows


def _draining_openloop_rows(ol: dict[str, Any] | None) -> list[str]:
    if not ol:
        return []
    return [
        f"| open loop 1,000 req/s **while one consumer drains a backlog** | achieved {ol['achieved_rps']} req/s, p50"
        f" {ol['p50_ms']} ms, **p99 {ol['p99_ms']} ms** (p99 per second:"
        f" {', '.join(str(v) for v in ol.get('p99_ms_by_second', []))}); {_backlog(ol['backlog'])} | p99 ≤ 50 ms |",
    ]


def _cost(c: dict[str, Any]) -> str:
    per = c["us_per_coupon"]
    parts = [f"API {per.get('api', 0):.0f} (kernel {per.get('api_sys', 0):.0f})"]
    parts += [f"{name} {per[key]:.0f}" for key, name in _COST_GROUPS if key in per]
    return f"**{c['total_us_per_coupon']:.0f}**: " + ", ".join(parts) + f" ({c['coupons']:,} coupons)"


_BESIDE = ("kafka_cluster", "redis_cluster")
_COST_GROUPS = (("consumer", "consumer"), ("redis", "Redis"), ("kafka", "Kafka"), ("mariadb", "MariaDB"))


def _cost_rows(steady: dict[str, Any] | None, flash: dict[str, Any] | None) -> list[str]:
    rows = []
    if steady:
        rows.append(
            f"| CPU µs per issued coupon, end to end, steady (wrk, every request accepted, the consumer live; until"
            f" the last row is in) | {_cost(steady)}; wrk {steady['rps']:.0f} req/s | |"
        )
    if flash:
        rows.append(
            f"| CPU µs per issued coupon, end to end, 10,000-user flash sale (every reply and row) | {_cost(flash)} | |"
        )
    return rows


def _accounts_rows(acc: dict[str, Any] | None) -> list[str]:
    if not acc:
        return []
    alone, beside, rush, sign = acc["issue_alone"], acc["issue_beside_rush"], acc["rush"], acc["signups"]

    def statuses(run: dict[str, Any]) -> str:
        return ", ".join(f"{k}: {v}" for k, v in sorted(run["statuses"].items()))

    return [
        f"| accounts: issue open loop 1,000 req/s, alone | achieved {alone['achieved_rps']} req/s, p50 {alone['p50_ms']} ms,"
        f" p99 {alone['p99_ms']} ms, max {alone['max_ms']} ms | |",
        f"| accounts: the same beside {rush['clients']} clients signing up + logging in | achieved"
        f" {beside['achieved_rps']} req/s, p50 {beside['p50_ms']} ms, p99 {beside['p99_ms']} ms, max {beside['max_ms']} ms;"
        f" p99 ratio **{acc['p99_ratio']}** | ≤ 3 |",
        f"| accounts: that rush | {rush['signups_per_s']} signups/s + {rush['logins_per_s']} logins/s; slowest signup"
        f" {rush['signup']['max_ms']} ms, login {rush['login']['max_ms']} ms ({statuses(rush)}) | |",
        f"| accounts: signups alone, {sign['clients']} concurrent clients | {sign['signups_per_s']} signups/s, p50"
        f" {sign['signup']['p50_ms']} ms, p99 {sign['signup']['p99_ms']} ms, slowest {sign['signup']['max_ms']} ms"
        f" ({statuses(sign)}) | no 60 s waits |",
    ]


STREAMS_COMMAND = ".venv/bin/python bench/bench.py --only streams"


def streams_markdown(r: dict[str, Any]) -> str:
    """The streams stage's own section of RESULTS.md (written by every run of the stage, `--only streams` too)."""
    st = r["streams"]
    runs = [st[k] for k in ("fanout", "wrk_without", "wrk_with", "openloop_without", "openloop_with") if k in st]
    loads = [x for run in runs for x in run.get("load_avg_1m", [])]
    head = [
        f"## Live stock: a flash sale watched by {st['streams']:,} SSE streams (stage `streams`)",
        "",
        f"{r['date']} on {r['machine']}; {r['workers']} gunicorn gevent workers; command: `{STREAMS_COMMAND}` (or"
        " `make bench`). The streams are held by `bench/streams.py` (gevent, raw sockets, HTTP/1.1 chunked), pinned"
        " to core 1 beside the load generator; every one connects and gets its first state before the sale starts."
        f" 1-minute load average {min(loads, default=0)}–{max(loads, default=0)} during the stage (other work on the"
        " box moves these numbers: compare within a row, each pair ran back to back).",
        "",
        "| measure | value | target |",
        "|---|---|---|",
    ]
    return "\n".join(head + _streams_rows(st)) + "\n"


def _streams_rows(st: dict[str, Any] | None) -> list[str]:
    if not st:
        return []
    a, b, c, d = st["wrk_without"], st["wrk_with"], st["openloop_without"], st["openloop_with"]
    n = st["streams"]

    def lat(run: dict[str, Any]) -> str:
        return f"p50 {run['latency']['p50']} ms, p99 {run['latency']['p99']} ms"

    def reach(crowd: dict[str, Any]) -> str:
        ms = crowd["sold_out_after_last_unit_ms"] or {}
        return (
            f"p50 {ms.get('p50')} ms, p99 {ms.get('p99')} ms, last stream {ms.get('max')} ms"
            f" ({crowd['finals'].get('sold-out', 0)}/{crowd['streams']} got sold-out,"
            f" {crowd['out_of_order']} stock events out of order)"
        )

    loads = ", ".join(
        f"{k}: {'→'.join(str(x) for x in st[k]['load_avg_1m'])}"
        for k in ("wrk_without", "wrk_with", "openloop_without", "openloop_with")
    )
    return [
        f"| streams: 1-minute load average before → after each run (2 cores; other work on the box) | {loads} | |",
        f"| streams: wrk sale of {st['quantity_wrk']:,} units, no streams / {n:,} open streams on the coupon |"
        f" {a['rps']:.0f} / {b['rps']:.0f} req/s, ratio **{st['rps_ratio']}** ({lat(a)} / {lat(b)}); sold out after"
        f" {a['sold_out_s']} / {b['sold_out_s']} s (sale {a['sale_rps']} / {b['sale_rps']} accepted/s, ratio"
        f" {st['sale_rps_ratio']}); API CPU µs/request {a['cpu_us_per_request'].get('api')} /"
        f" {b['cpu_us_per_request'].get('api')} | |",
        f"| streams: open loop 1,000 req/s on {st['quantity_openloop']:,} units, no streams / {n:,} streams |"
        f" p50 {c['p50_ms']} / {d['p50_ms']} ms, p99 {c['p99_ms']} / {d['p99_ms']} ms (ratio"
        f" **{st['p99_ratio_openloop']}**), achieved {c['achieved_rps']} / {d['achieved_rps']} req/s | |",
        f"| streams: gate's last unit → sold-out at every stream (wrk sale) | {reach(b['crowd'])} | |",
        f"| streams: the same, open-loop sale | {reach(d['crowd'])}; {d['crowd']['stock_events']:,} stock events"
        f" delivered, stream client CPU {d['crowd']['client_cpu_s']} s | |",
        *(
            [
                f"| streams: {n:,} streams, gate moved every 50 ms, no sale: API CPU per delivered event |"
                f" {st['fanout']['api_cpu_us_per_event']} µs (of it kernel {st['fanout']['api_sys_us_per_event']} µs);"
                f" {st['fanout']['events']:,} events in {st['fanout']['seconds']} s; Redis"
                f" {st['fanout']['redis_cpu_us_per_event']} µs per event | |"
            ]
            if st.get("fanout")
            else []
        ),
    ]


def markdown(r: dict[str, Any]) -> str:
    fs, ol, issue, cr = r["flash_sale"], r["open_loop_1000rps"], r["issue"], r["crowd"]
    lat = issue.get("latency", {})
    rows = [
        f"# Benchmark results\n\n{r['date']} on {r['machine']}; {r['workers']} gunicorn gevent workers; "
        f"load generator: {r['load_generator']}.\n",
        "| measure | value | target |",
        "|---|---|---|",
        *_per_request_rows(r),
        f"| ceiling: GET /health | {r['ceiling']['rps']:.0f} req/s | |",
        f"| issue: POST /issue, distinct users | {issue['rps']:.0f} req/s (p50 {lat.get('p50')} ms, p95 {lat.get('p95')} ms, p99 {lat.get('p99')} ms) | |",
        f"| issue / ceiling, the endpoint alone (no consumer) | {issue['ratio_to_ceiling']} | |",
        *_draining_issue_rows(r.get("issue_draining")),
        f"| CPU µs per request, ceiling → issue (API incl. kernel; Redis; Kafka broker) | "
        f"{_cpu(r['ceiling'])} → {_cpu(issue)}; ratio {issue.get('cpu_ratio_to_ceiling')} | |",
        f"| requests per gate call / per Kafka record (issue stage) | {issue['grouping']['per_gate_call']} / "
        f"{issue['grouping']['per_kafka_record']} | |",
        f"| crowd: {cr['connections']} connections, ceiling / issue | {cr['ceiling']['rps']:.0f} / "
        f"{cr['issue']['rps']:.0f} req/s, ratio **{cr['issue']['ratio_to_ceiling']}** (CPU ratio "
        f"{cr['issue'].get('cpu_ratio_to_ceiling')}; {cr['issue']['grouping']['per_gate_call']} requests per batch; "
        f"issue p99 {cr['issue'].get('latency', {}).get('p99')} ms) | |",
        f"| open loop 1,000 req/s offered, the API alone (no consumer) | achieved {ol['achieved_rps']} req/s, p50 {ol['p50_ms']} ms, p99 {ol['p99_ms']} ms"
        f" (p99 per second: {', '.join(str(v) for v in ol.get('p99_ms_by_second', []))}) | p99 ≤ 50 ms |",
        *_draining_openloop_rows(r.get("open_loop_draining")),
        *_cost_rows(r.get("steady_cost"), fs.get("cost")),
        f"| flash sale {fs['users']} users / 1,000 | {fs['statuses']}, 5xx {fs['five_xx']}, exact {fs['exact']} | 0 errors, exact |",
        f"| flash sale latency | p50 {fs['latency_ms']['p50']} ms, p99 {fs['latency_ms']['p99']} ms, max {fs['latency_ms']['max']} ms | |",
        f"| flash sale: DB holds all 1,000 rows after | {fs['seconds_until_db_has_all_rows']} s | |",
        f"| flash sale: last of the replies read after | {fs['seconds_until_last_reply']} s | |",
        *_accounts_rows(r.get("accounts")),
        f"| drain, 1 consumer | {r['drain_1']['rows_per_s']:.0f} rows/s ({r['drain_1']['messages']} rows, first batch to last"
        f" row {r['drain_1']['seconds']} s; {r['drain_1']['seconds_from_launch']} s from process start) | ≥ 10,000 rows/s |",
        f"| drain, 2 consumers | {r['drain_2']['rows_per_s']:.0f} rows/s (first batch to last row"
        f" {r['drain_2']['seconds']} s, including the rebalance when the second joins;"
        f" {r['drain_2']['seconds_from_launch']} s from process start) | |",
    ]
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    main()
