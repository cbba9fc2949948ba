"""A gate load process: many greenlets call the real Gate.reserve at once, batched as in an API worker.

Run as `python -m tests.support.gate_race < spec.json`; spec = {"redis_url": ..., "cluster_nodes": ... or "",
"requests": [[coupon_id, user_id], ...], "concurrency": N}. Prints READY once connected, then waits for a
line on stdin (the start signal shared by all racing processes) and prints a JSON list of [outcome, rank].
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402

from gevent.pool import Pool  # noqa: E402

from coupon.adapters.gate import Gate  # noqa: E402
from coupon.adapters.redis_client import build_redis  # noqa: E402
from harness.gate_calls import reserve_one  # noqa: E402


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    gate = Gate(build_redis(spec["redis_url"], cluster_nodes=spec["cluster_nodes"]))
    gate.client.ping()
    print("READY", flush=True)
    sys.stdin.readline()
    results: list[object] = [None] * len(spec["requests"])

    def one(i: int) -> None:
        coupon_id, user_id = spec["requests"][i]
        try:
            decision = reserve_one(gate, coupon_id, user_id)
            results[i] = [decision.outcome.name, decision.rank]
        except Exception as exc:  # an error is a result too; the test fails on it
            results[i] = [type(exc).__name__, 0]

    pool = Pool(spec["concurrency"])
    pool.map(one, range(len(results)))
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
