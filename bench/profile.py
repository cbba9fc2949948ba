"""Where an issue request's API CPU goes: py-spy samples every gunicorn worker of a `make run`-shaped API under wrk
and splits the samples into parts, shared (gunicorn, Flask, metrics, JSON) and issue-specific (token, admission,
batch hand-off, gate, Kafka), in µs per request.

    python -m bench.profile [--seconds 10] [--connections 100] [--rate 200] [--health]    (needs `make services`)

Each sample goes to the part of the deepest frame that names one (a Redis read under the gate is "Redis", a send
under gunicorn's response is "gunicorn write"); py-spy counts only threads on CPU, so the sum is close to the
workers' CPU time (it is printed beside /proc's figure). `--health` profiles GET /health instead: the shared floor.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from bench.bench import DB_URL, LOG_DIR, REDIS_URL, _cpu_seconds, env_for, fresh_state, write_tokens, wrk
from coupon import create_app
from coupon.extensions import db
from coupon.http.minting import mint_token, user_token
from coupon.services.accounts import ensure_admin
from harness.client import Api
from harness.processes import Stack

# (part, needles): the deepest frame matching a needle names the sample's part. A frame reads `func (pkg/file.py:N)`;
# a needle "a&b" needs both substrings.
PARTS: list[tuple[str, tuple[str, ...]]] = [
    ("HTTP metrics", ("prometheus_flask_exporter", "prometheus_client", "coupon/observability/http_metrics")),
    ("logging and request ids", ("coupon/observability/request_ids", "request_id_hooks", "(logging/")),
    ("JSON envelope", ("orjson", "json_provider", "coupon/http/envelope")),
    ("token and admission", ("access_tokens", "coupon/http/guards", "coupon/http/admission", "rate_limit")),
    ("Kafka producer", ("(kafka/", "kafka_publisher", "crc32c")),
    ("Redis (gate, limiter)", ("(redis/", "hiredis", "coupon/adapters/gate")),
    ("batch hand-off and decision", ("coalescer", "coupon/services/issuing")),
    ("issue view", ("coupon/http/views", "coupon/http/parsing")),
    ("Werkzeug routing", ("(werkzeug/routing",)),
    ("Flask and Werkzeug request handling", ("(flask/", "(werkzeug/")),
    ("gunicorn response write", ("Response.&(gunicorn/http/wsgi", "(gunicorn/util", "(gunicorn.conf.py")),
    ("gunicorn WSGI environ", ("(gunicorn/http/wsgi",)),
    ("gunicorn request parse", ("(gunicorn/http/",)),
    ("gunicorn worker loop", ("(gunicorn/workers",)),
]
GEVENT = "gevent hub and switching"


def part_of(stack: list[str]) -> str:
    for frame in reversed(stack):  # the leaf is last in py-spy's raw output
        for part, needles in PARTS:
            if any(all(piece in frame for piece in n.split("&")) for n in needles):
                return part
    return GEVENT if any("gevent" in f for f in stack) else "other"


def parse_raw(path: Path) -> Counter[str]:
    parts: Counter[str] = Counter()
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack:
            parts[part_of(stack.split(";"))] += int(count)
    return parts


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second per worker")
    ap.add_argument("--health", action="store_true", help="profile GET /health (the shared floor) instead")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = env_for(uuid.uuid4().hex[:8])
    fresh_state(env)
    app = create_app({"APP_ENV": "test", "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL})
    with app.app_context():  # the API alone: made-up users, whose records no consumer writes
        pairs = [(uid, user_token(uid)) for uid in (str(uuid.uuid4()) for _ in range(100_000))]
        admin_token, _ = mint_token(ensure_admin(db.session, "bench-admin", "bench-admin-password")[0])
    sa.create_engine(DB_URL).dispose()
    stack = Stack(env, LOG_DIR)
    workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
    try:
        base = stack.start_api(workers=workers)
        api = Api(base)
        warm, coupon = api.create_coupon(admin_token, 10_000_000), api.create_coupon(admin_token, 10_000_000)
        wrk(
            base,
            "issue.lua",
            5,
            args.connections,
            {"TOKENS": str(write_tokens(LOG_DIR / "t-w.txt", pairs[:40_000])), "COUPON_ID": warm["id"]},
        )
        master = stack.procs[0].pid
        pids = worker_pids(master)
        raws = [LOG_DIR / f"profile-{pid}.txt" for pid in pids]
        spies = [
            subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--nonblocking",
                    "--duration",
                    str(args.seconds + 1),
                    "--output",
                    str(raw),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, raw in zip(pids, raws)
        ]
        time.sleep(1.0)  # the samplers attached
        cpu_before = sum(_cpu_seconds(p) for p in pids)
        if args.health:
            run = wrk(base + "/health", "health.lua", args.seconds, args.connections)
        else:
            tokens = write_tokens(LOG_DIR / "t-p.txt", pairs[40_000:])
            run = wrk(
                base, "issue.lua", args.seconds, args.connections, {"TOKENS": str(tokens), "COUPON_ID": coupon["id"]}
            )
        cpu = sum(_cpu_seconds(p) for p in pids) - cpu_before
        for s in spies:
            s.wait(timeout=60)
    finally:
        stack.stop()
    parts: Counter[str] = Counter()
    for raw in raws:
        parts.update(parse_raw(raw))
    requests = run["requests"]
    per = {part: round(1e6 * n / args.rate / requests, 1) for part, n in parts.most_common()}
    out = {
        "endpoint": "GET /health" if args.health else "POST /api/coupon/{id}/issue",
        "requests": requests,
        "rps": run["rps"],
        "workers": len(pids),
        "api_cpu_us_per_request_proc": round(1e6 * cpu / requests, 1),
        "sampled_us_per_request": round(sum(per.values()), 1),
        "us_per_request_by_part": per,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
