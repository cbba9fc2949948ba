"""Open-loop load: a fixed request rate (not "as fast as replies come back"), latency measured from the
moment each request was due, so a stalled server cannot hide its queueing (no coordinated omission).

    python -m bench.openloop --base URL --coupon ID --tokens FILE --rate 1000 --seconds 10
Prints one JSON object: sent, statuses, p50/p95/p99/max latency in ms.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import http.client
import json
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import gevent
from gevent.queue import Queue


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(pct / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--coupon", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--rate", type=float, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--connections", type=int, default=256)
    args = ap.parse_args()
    url = urlparse(args.base)
    tokens = [line.split()[1] for line in Path(args.tokens).read_text().splitlines() if line.strip()]
    total = int(args.rate * args.seconds)
    assert total <= len(tokens), f"need {total} tokens, have {len(tokens)}"
    pool: Queue = Queue()
    for _ in range(args.connections):
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        # Connected before the clock starts: the run measures requests, not 256 TCP handshakes in its first second.
        conn.connect()
        pool.put(conn)
    latencies: list[float] = []
    by_second: dict[int, list[float]] = {}
    statuses: Counter = Counter()
    path = f"/api/coupon/{args.coupon}/issue"

    def one(token: str, due: float) -> None:
        conn = pool.get()
        try:
            conn.request("POST", path, headers={"Authorization": f"Bearer {token}", "Content-Length": "0"})
            resp = conn.getresponse()
            resp.read()
            statuses[resp.status] += 1
        except Exception as exc:
            statuses[type(exc).__name__] += 1
            conn.close()
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        finally:
            latency = (time.perf_counter() - due) * 1000
            latencies.append(latency)
            by_second.setdefault(int(due - start), []).append(latency)
            pool.put(conn)

    start = time.perf_counter() + 0.2
    jobs = []
    for i in range(total):
        due = start + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            gevent.sleep(delay)
        jobs.append(gevent.spawn(one, tokens[i], due))
    gevent.joinall(jobs)
    elapsed = time.perf_counter() - start
    latencies.sort()
    print(
        json.dumps(
            {
                "sent": total,
                "seconds": round(elapsed, 2),
                "achieved_rps": round(total / elapsed, 1),
                "statuses": {str(k): v for k, v in statuses.items()},
                "p50_ms": round(percentile(latencies, 50), 2),
                "p95_ms": round(percentile(latencies, 95), 2),
                "p99_ms": round(percentile(latencies, 99), 2),
                "max_ms": round(latencies[-1], 2) if latencies else 0,
                # Where the tail comes from: one p99 per second of the run.
                "p99_ms_by_second": [round(percentile(sorted(by_second[k]), 99), 1) for k in sorted(by_second)],
            }
        )
    )


if __name__ == "__main__":
    main()
