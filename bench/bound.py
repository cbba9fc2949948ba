"""How close issue / ceiling could get if the batch's Redis and Kafka work cost nothing, on this machine.

    python -m bench.bound [--seconds 10] [--connections 100] [--draining 50000]      (needs `make services`)

Runs gunicorn with the production configuration (as many workers as `make bench`) on bench/noop_wsgi.py (the real
app, its issue batch decided by a no-op) and measures GET /health and POST /issue under the same wrk as `make
bench`. The gap that is left is request handling alone: the token, the hooks, routing with a path converter, the
batch hand-off, the 202. `--draining N` measures the no-op issue path once more while one consumer, started as
`make run` starts it, drains a backlog of N events: the bound of `make bench`'s "while the consumer drains" row.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid

import sqlalchemy as sa

from bench.bench import (
    DB_URL,
    LOG_DIR,
    REDIS_URL,
    backlog_progress,
    consumer_pids,
    consumer_with_backlog,
    env_for,
    fresh_state,
    say,
    wait_quiet,
    write_tokens,
    wrk,
)
from coupon import create_app
from coupon.extensions import db
from coupon.http.minting import mint_token, user_token
from coupon.services.accounts import ensure_admin
from harness.client import Api
from harness.processes import Stack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--draining", type=int, default=0, help="also measure beside a consumer draining this many events")
    args = ap.parse_args()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = env_for(uuid.uuid4().hex[:8])
    workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
    if args.draining:  # the consumer writes its backlog there
        fresh_state(env)
    app = create_app({"APP_ENV": "test", "DATABASE_URL": DB_URL, "REDIS_URL": REDIS_URL})
    with app.app_context():  # the no-op batch never looks a user up (nor refuses one twice): made-up users do
        pairs = [(uid, user_token(uid)) for uid in (str(uuid.uuid4()) for _ in range(60_000))]
        admin_token = ""
        if args.draining:  # the backlog's coupon is created through the API, as make bench does
            admin_token, _ = mint_token(ensure_admin(db.session, "bench-admin", "bench-admin-password")[0])
    tokens = write_tokens(LOG_DIR / "tokens-bound.txt", pairs)
    stack = Stack(env, LOG_DIR)
    out: dict[str, object] = {"connections": args.connections, "workers": workers}
    try:
        base = stack.start_api(workers=workers, app="bench.noop_wsgi:app")
        issue_env = {"TOKENS": str(tokens), "COUPON_ID": str(uuid.uuid4())}
        wrk(base, "issue.lua", 5, args.connections, issue_env)  # warm-up, not measured
        pid = stack.procs[0].pid
        ceiling = wrk(base + "/health", "health.lua", args.seconds, args.connections, api_pid=pid)
        issue = wrk(base, "issue.lua", args.seconds, args.connections, issue_env, api_pid=pid)
        out.update(
            ceiling_rps=ceiling["rps"],
            noop_issue_rps=issue["rps"],
            ratio=round(issue["rps"] / ceiling["rps"], 3),
            ceiling_cpu_us=ceiling["cpu_us_per_request"],
            noop_issue_cpu_us=issue["cpu_us_per_request"],
            noop_issue_status=issue.get("status"),
        )
        say(f"issue with a no-op batch / ceiling at {args.connections} connections: {out['ratio']}")
        if args.draining:
            say(f"machine quiet after {wait_quiet()} s; the no-op issue path beside a {args.draining:,}-event drain")
            engine = sa.create_engine(DB_URL)
            watch = consumer_with_backlog(stack, env, engine, Api(base), admin_token, args.draining)
            started = time.time()
            draining = wrk(
                base,
                "issue.lua",
                args.seconds,
                args.connections,
                issue_env,
                api_pid=pid,
                consumers=consumer_pids(stack),
            )
            out.update(
                noop_issue_draining_rps=draining["rps"],
                ratio_draining=round(draining["rps"] / ceiling["rps"], 3),
                noop_issue_draining_cpu_us=draining["cpu_us_per_request"],
                backlog=backlog_progress(watch, started, time.time()),
            )
            say(f"the same while one consumer drains: {out['ratio_draining']}")
    finally:
        stack.stop()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
