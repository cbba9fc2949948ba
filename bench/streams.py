"""Many live-stock streams (SSE) at once from one gevent process: each a raw socket speaking HTTP/1.1 (chunked,
as a browser's EventSource gets it), scanned as it arrives, recording when its final event came.

    python -m bench.streams --base URL --coupon ID --tokens FILE --count 2000 [--hold]

Prints `ready <connected> <failed> <epoch>` on stdout once every stream got its first state (or failed), then, when
every stream has ended (its final event, or EOF), on SIGTERM or after --timeout (--hold: stays until SIGTERM), one
JSON object: counts, errors, per-stream epoch arrival times of the final event, and how many stock events arrived
out of order.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse
import json
import re
import resource
import signal
import socket
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlparse

import gevent
from gevent.event import Event
from gevent.lock import Semaphore

FINAL = (b"sold-out", b"closed")


def raise_fd_limit(needed: int) -> int:
    """Soft NOFILE limit up to the hard one when `needed` descriptors would not fit; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and (hard == resource.RLIM_INFINITY or soft < hard):
        soft = hard if hard != resource.RLIM_INFINITY else max(needed, soft)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


# One event's head on the wire: each frame is one write, so one HTTP chunk, and its lines are never split by the
# chunk framing (only TCP may cut them, which the kept tail covers). A C-speed scan, not a parse per event: the
# client must keep up with 2,000 streams' events on a box that also runs the server.
EVENT_HEAD = re.compile(rb"\nid: [0-2]\.([0-9]+)\.[0-9]+\.[NASED]\nevent: ([a-z-]+)\n")
TAIL = 160  # longer than any event head


class Stream:
    __slots__ = ("error", "events", "final", "final_at", "first_at", "last_reserved", "out_of_order", "status", "tail")

    def __init__(self) -> None:
        self.status = 0
        self.first_at = 0.0
        self.final: str | None = None
        self.final_at = 0.0
        self.events = 0
        self.last_reserved = -1
        self.out_of_order = 0
        self.error: str | None = None
        self.tail = b""

    def feed(self, data: bytes, now: float) -> None:
        """Bytes as received (chunk framing and all): count the events, check their order, spot the final one."""
        buf = self.tail + data
        end = 0
        for match in EVENT_HEAD.finditer(buf):
            end = match.end()
            self.events += 1
            if not self.first_at:
                self.first_at = now
            reserved = int(match.group(1))
            if reserved < self.last_reserved:
                self.out_of_order += 1
            self.last_reserved = reserved
            if match.group(2) in FINAL:
                self.final, self.final_at = match.group(2).decode(), now
        self.tail = buf[max(end, len(buf) - TAIL) :]


def run_stream(host: str, port: int, path: str, token: str, st: Stream, gate: Semaphore, ready: Event) -> None:
    sock = None
    try:
        with gate:  # at most --connect-batch handshakes and first answers at once
            sock = socket.create_connection((host, port), timeout=60)
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
                "Accept: text/event-stream\r\n\r\n"
            )
            sock.sendall(request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed before the headers")
                head += data
            head, rest = head.split(b"\r\n\r\n", 1)
            st.status = int(head.split(b" ", 2)[1])
            if st.status != 200:
                raise ConnectionError(f"HTTP {st.status}")
        sock.settimeout(None)
        data = rest
        while True:
            if data:
                st.feed(data, time.time())
                if st.final:
                    return
            data = sock.recv(262144)
            if not data:
                return
    except Exception as exc:
        st.error = type(exc).__name__ + (f": {exc}" if str(exc).startswith("HTTP") else "")
    finally:
        ready.set()
        if sock is not None:
            sock.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--coupon", required=True)
    ap.add_argument("--tokens", required=True, help='file of "user_id token" lines; streams take them in turn')
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--connect-batch", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=300, help="give up waiting for the ends after this long")
    ap.add_argument("--hold", action="store_true", help="keep the streams open until SIGTERM")
    args = ap.parse_args()
    raise_fd_limit(args.count + 64)
    url = urlparse(args.base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    tokens = [line.split()[1] for line in Path(args.tokens).read_text().splitlines() if line.strip()]
    path = f"/api/coupon/{args.coupon}/stock/stream"
    streams = [Stream() for _ in range(args.count)]
    gate = Semaphore(args.connect_batch)
    progress = Event()
    jobs = [
        gevent.spawn(run_stream, host, port, path, tokens[i % len(tokens)], st, gate, progress)
        for i, st in enumerate(streams)
    ]
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline and not stop.is_set():
        if all(st.first_at or st.error or st.final for st in streams):
            break
        progress.clear()
        progress.wait(0.05)
    connected = sum(1 for st in streams if st.first_at)
    cpu_at_ready = time.process_time()
    print(f"ready {connected} {args.count - connected} {time.time():.6f}", flush=True)
    # Until every stream ended (without --hold), SIGTERM, or the deadline.
    while time.monotonic() < deadline and not stop.is_set() and (args.hold or not all(j.dead for j in jobs)):
        stop.wait(0.05)
    gevent.killall([j for j in jobs if not j.dead], block=True, timeout=5)
    finals = Counter(st.final for st in streams if st.final)
    print(
        json.dumps(
            {
                "count": args.count,
                "connected": connected,
                "errors": dict(Counter(st.error for st in streams if st.error)),
                "finals": dict(finals),
                "ended_without_final": sum(1 for st in streams if st.first_at and not st.final and not st.error),
                "stock_events": sum(st.events for st in streams),
                "out_of_order": sum(st.out_of_order for st in streams),
                "cpu_s_connecting": round(cpu_at_ready, 3),
                "cpu_s_after_ready": round(time.process_time() - cpu_at_ready, 3),
                # Streams without their final event: how many events each had seen, and the last reserved count.
                "unfinished": [
                    [st.events, st.last_reserved, st.error] for st in streams if st.first_at and not st.final
                ][:20],
                "first_at": [round(st.first_at, 6) for st in streams if st.first_at],
                "final_at": [round(st.final_at, 6) for st in streams if st.final],
            }
        ),
        flush=True,
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
