"""A burst load generator: N HTTP requests fired at once from one gevent process.

Run as `python -m harness.burst < specs.jsonl`: every line of stdin is a burst, spec = {"base": url,
"requests": [[method, path, token], ...]}; a request may name its own base URL as a fourth item (clients split over
several servers, or null) and extra headers as a fifth (e.g. an Idempotency-Key). Every connection is opened first,
then all requests go out together. Each burst is answered with a line {"results": [[status, error code or null,
data, ms], ...] in order, "fired": epoch s, "done": epoch s}. harness.client keeps such a process per test
process and reuses it: starting one cost ~0.35 CPU-s, and the suite fires over a hundred bursts.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import http.client  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlparse  # noqa: E402

import gevent  # noqa: E402
from gevent.event import Event  # noqa: E402


def run(spec: dict[str, Any]) -> tuple[list[object], float, float]:
    """Fire the spec's requests together; (results in order, epoch fired, epoch done)."""
    url = urlparse(spec["base"])
    go = Event()
    results: list[object] = [None] * len(spec["requests"])
    ready = [0]

    def one(
        i: int, method: str, path: str, token: str | None, base: str | None = None, extra: dict[str, str] | None = None
    ) -> None:
        conn = None
        target = urlparse(base) if base else url
        for attempt in range(20):
            try:
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                conn.connect()
                break
            except OSError:
                gevent.sleep(0.05 * (attempt + 1))
        ready[0] += 1
        go.wait()
        started = time.perf_counter()
        try:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            headers.update(extra or {})
            assert conn is not None
            conn.request(method, path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            elapsed = (time.perf_counter() - started) * 1000
            try:
                doc = json.loads(body)
                code = (doc.get("errorMessage") or {}).get("code")
                data = doc.get("data")
            except ValueError:
                code, data = "NOT_JSON", None
            results[i] = [resp.status, code, data, round(elapsed, 2)]
        except Exception as exc:  # a refused or reset connection is a result too
            results[i] = [0, type(exc).__name__, None, 0]
        finally:
            if conn is not None:
                conn.close()

    jobs = [gevent.spawn(one, i, *req) for i, req in enumerate(spec["requests"])]
    deadline = time.monotonic() + 30
    while ready[0] < len(jobs) and time.monotonic() < deadline:
        gevent.sleep(0.02)
    fired = time.time()
    go.set()
    gevent.joinall(jobs)
    return results, fired, time.time()


def main() -> None:
    # No other greenlet runs between bursts: a blocking read of stdin stalls nothing.
    for line in sys.stdin:
        results, fired, done = run(json.loads(line))
        sys.stdout.write(json.dumps({"results": results, "fired": fired, "done": done}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
