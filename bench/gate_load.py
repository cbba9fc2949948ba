"""A gate load process for bench/scaling.py: greenlets call the real Gate.reserve in a loop, batched as in an
API worker (coalescer → one pipeline, one reserve.lua call per coupon per flush).

`python bench/gate_load.py < spec.json`; spec = {"redis_url", "cluster_nodes", "coupons": [...],
"greenlets", "seconds"}. Prints READY once connected, waits for a line on stdin (the shared start), then
prints {"decisions": n, "seconds": s, "outcomes": {...}, "errors": n}.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import gevent

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coupon.adapters.gate import Gate
from coupon.adapters.redis_client import build_redis
from harness.gate_calls import reserve_one


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    gate = Gate(build_redis(spec["redis_url"], cluster_nodes=spec["cluster_nodes"], max_connections=64))
    gate.client.ping()
    print("READY", flush=True)
    sys.stdin.readline()
    outcomes: Counter = Counter()
    errors = [0]
    coupons = spec["coupons"]
    deadline = time.monotonic() + spec["seconds"]
    pid = os.getpid()

    def loop(g: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                outcomes[reserve_one(gate, coupons[(g + n) % len(coupons)], f"{pid}-{g}-{n}").outcome.name] += 1
            except Exception:
                errors[0] += 1

    started = time.monotonic()
    gevent.joinall([gevent.spawn(loop, g) for g in range(spec["greenlets"])])
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {"decisions": sum(outcomes.values()), "seconds": elapsed, "outcomes": outcomes, "errors": errors[0]}
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
