"""Account rush: N concurrent clients sign up (and log in) in a loop for a fixed time, as fast as replies come.

    python -m bench.accounts --base URL --clients 64 --seconds 12 [--login]
Prints "started" once every client has its connection, then one JSON object: signups and logins per second,
statuses, and the latency of each kind (p50/p99/max in ms). A 503 E5035 is honoured: the client waits its
Retry-After, as a well-behaved client would, instead of hammering the busy worker.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import http.client
import json
import sys
import time
import uuid
from collections import Counter
from urllib.parse import urlparse

import gevent

from bench.openloop import percentile

PASSWORD = "bench-password-1"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--login", action="store_true", help="log in after each signup")
    args = ap.parse_args()
    url = urlparse(args.base)
    prefix = uuid.uuid4().hex[:8]
    latencies: dict[str, list[float]] = {"signup": [], "login": []}
    statuses: Counter = Counter()
    done = {"signup": 0, "login": 0}
    conns = []
    for _ in range(args.clients):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
        conn.connect()
        conns.append(conn)

    def call(
        conn: http.client.HTTPConnection, kind: str, path: str, body: bytes
    ) -> tuple[http.client.HTTPConnection, int, str | None]:
        started = time.perf_counter()
        try:
            conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            status, retry_after = resp.status, resp.getheader("Retry-After")
        except Exception as exc:
            statuses[f"{kind} {type(exc).__name__}"] += 1
            conn.close()
            return http.client.HTTPConnection(url.hostname, url.port, timeout=120), 0, None
        latencies[kind].append((time.perf_counter() - started) * 1000)
        statuses[f"{kind} {status}"] += 1
        return conn, status, retry_after

    def client(index: int, deadline: float) -> None:
        conn = conns[index]
        n = 0
        while time.perf_counter() < deadline:
            name = f"{prefix}-{index}-{n}"
            n += 1
            body = json.dumps({"username": name, "password": PASSWORD}).encode()
            conn, status, retry_after = call(conn, "signup", "/api/users/signup", body)
            if status == 201:
                done["signup"] += 1
                if args.login:
                    conn, status, retry_after = call(conn, "login", "/api/auth/login", body)
                    done["login"] += status == 200
            if status == 503 and retry_after:
                gevent.sleep(min(float(retry_after), max(0.0, deadline - time.perf_counter())))

    print("started", flush=True)
    start = time.perf_counter()
    deadline = start + args.seconds
    gevent.joinall([gevent.spawn(client, i, deadline) for i in range(args.clients)])
    elapsed = time.perf_counter() - start

    def summary(values: list[float]) -> dict[str, float]:
        values.sort()
        return {
            "count": len(values),
            "p50_ms": round(percentile(values, 50), 1),
            "p99_ms": round(percentile(values, 99), 1),
            "max_ms": round(values[-1], 1) if values else 0.0,
        }

    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": round(elapsed, 2),
                "signups_per_s": round(done["signup"] / elapsed, 1),
                "logins_per_s": round(done["login"] / elapsed, 1),
                "statuses": dict(statuses),
                "signup": summary(latencies["signup"]),
                "login": summary(latencies["login"]),
            }
        ),
        flush=True,
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
