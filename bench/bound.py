"""How close issue / ceiling could get if the batch's Redis and Kafka work cost nothing, on this machine.

    python -m bench.bound [--seconds 10] [--connections 100]      (needs `make services`)

Runs gunicorn with the production configuration on bench/noop_wsgi.py (the real app, its issue batch decided
by a no-op) and measures GET /health and POST /issue under the same wrk as `make bench`. The gap that is left
is request handling alone: the token, the hooks, routing with a path converter, the batch hand-off, the 202.
"""

from __future__ import annotations

import argparse
import json
import uuid

from bench.bench import LOG_DIR, env_for, say, write_tokens, wrk
from coupon import create_app
from coupon.http.minting import user_token
from tests.support.processes import Stack


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=100)
    args = ap.parse_args()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    app = create_app({"APP_ENV": "test"})
    with app.app_context():  # tokens only: the no-op batch never looks a user up
        pairs = [(uid, user_token(uid)) for uid in (str(uuid.uuid4()) for _ in range(60_000))]
    tokens = write_tokens(LOG_DIR / "tokens-bound.txt", pairs)
    stack = Stack(env_for(uuid.uuid4().hex[:8]), LOG_DIR)
    try:
        base = stack.start_api(app="bench.noop_wsgi:app")
        env = {"TOKENS": str(tokens), "COUPON_ID": str(uuid.uuid4())}
        wrk(base, "issue.lua", 5, args.connections, env)  # warm-up, not measured
        pid = stack.procs[0].pid
        ceiling = wrk(base + "/health", "health.lua", args.seconds, args.connections, api_pid=pid)
        issue = wrk(base, "issue.lua", args.seconds, args.connections, env, api_pid=pid)
    finally:
        stack.stop()
    out = {
        "connections": args.connections,
        "ceiling_rps": ceiling["rps"],
        "noop_issue_rps": issue["rps"],
        "ratio": round(issue["rps"] / ceiling["rps"], 3),
        "ceiling_cpu_us": ceiling["cpu_us_per_request"],
        "noop_issue_cpu_us": issue["cpu_us_per_request"],
        "noop_issue_status": issue.get("status"),
    }
    say(f"issue with a no-op batch / ceiling at {args.connections} connections: {out['ratio']}")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
