#!/usr/bin/env python3
"""Check that a Kafka broker really answers, using the Python 3 standard library only.

It speaks the Kafka wire protocol directly (no kafka-python: this runs before the
virtualenv exists): ApiVersions v0 to learn which Metadata versions the broker
accepts, then a Metadata request for no topics, and it succeeds when the answer
lists at least one broker.

The Metadata version is not hard-coded: it is the highest one both sides speak
(this parser handles the non-flexible v0-v8; Kafka 4.1 accepts v0-v13), since
Kafka 4 already dropped old versions of several APIs (KIP-896).

    scripts/kafka_ping.py [--bootstrap 127.0.0.1:9092[,host:port...]] [--brokers N] [--timeout 60] [--quiet]

A bootstrap list (KAFKA_BOOTSTRAP_SERVERS) is tried address by address, so one broker down in a cluster does not
fail the check. --brokers N succeeds only once the answer lists N brokers or more (scripts/kafka_cluster.sh waits
for all of its brokers to have registered this way).

Retries until the timeout; exits 0 on success, 1 otherwise (with a message on stderr).
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import time

API_METADATA = 3
API_VERSIONS = 18
CLIENT_ID = b"kafka_ping"
MAX_NON_FLEXIBLE_METADATA = 8  # v9+ use compact/tagged encodings


class ProtocolError(Exception):
    pass


class Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ProtocolError("response truncated")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def int16(self) -> int:
        return self._take(">h")

    def int32(self) -> int:
        return self._take(">i")

    def nullable_string(self) -> str | None:
        length = self.int16()
        if length < 0:
            return None
        if self.pos + length > len(self.data):
            raise ProtocolError("response truncated")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", "replace")

    def string(self) -> str:
        value = self.nullable_string()
        if value is None:
            raise ProtocolError("unexpected null string")
        return value


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ProtocolError("connection closed by broker")
        buf.extend(chunk)
    return bytes(buf)


def request(sock: socket.socket, api_key: int, api_version: int, correlation_id: int, body: bytes) -> Reader:
    # Request header v1: api_key int16, api_version int16, correlation_id int32, client_id nullable string
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    (size,) = struct.unpack(">i", recv_exact(sock, 4))
    if size < 4 or size > 64 * 1024 * 1024:
        raise ProtocolError(f"bad response size {size}")
    reader = Reader(recv_exact(sock, size))
    got = reader.int32()  # response header v0: correlation_id
    if got != correlation_id:
        raise ProtocolError(f"correlation id mismatch: sent {correlation_id}, got {got}")
    return reader


def api_versions(sock: socket.socket) -> dict[int, tuple[int, int]]:
    r = request(sock, API_VERSIONS, 0, 1, b"")
    error = r.int16()
    if error != 0:
        raise ProtocolError(f"ApiVersions error code {error}")
    versions = {}
    for _ in range(r.int32()):
        key, lo, hi = r.int16(), r.int16(), r.int16()
        versions[key] = (lo, hi)
    return versions


def metadata_body(version: int) -> bytes:
    # topics: an empty array asks for no topic at all (null, v1+, would mean "all topics"),
    # so the answer is just the broker list, cluster id and controller id.
    body = struct.pack(">i", 0)
    if version >= 4:
        body += struct.pack(">?", False)  # allow_auto_topic_creation
    if version >= 8:
        body += struct.pack(">??", False, False)  # include cluster/topic authorized operations
    return body


def metadata(sock: socket.socket, version: int):
    r = request(sock, API_METADATA, version, 2, metadata_body(version))
    if version >= 3:
        r.int32()  # throttle_time_ms
    brokers = []
    for _ in range(r.int32()):
        node_id = r.int32()
        host = r.string()
        port = r.int32()
        if version >= 1:
            r.nullable_string()  # rack
        brokers.append((node_id, host, port))
    cluster_id = r.nullable_string() if version >= 2 else None
    controller_id = r.int32() if version >= 1 else None
    return brokers, cluster_id, controller_id


def ping_once(host: str, port: int, timeout: float):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        versions = api_versions(sock)
        if API_METADATA not in versions:
            raise ProtocolError("broker does not list the Metadata API")
        lo, hi = versions[API_METADATA]
        version = min(hi, MAX_NON_FLEXIBLE_METADATA)
        if version < lo:
            raise ProtocolError(f"no usable Metadata version (broker supports v{lo}-v{hi})")
        brokers, cluster_id, controller_id = metadata(sock, version)
        return version, brokers, cluster_id, controller_id


def parse_address(value: str) -> tuple[str, int]:
    value = value.strip()
    host, sep, port = value.rpartition(":")
    if not sep:
        return value, 9092
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_bootstrap(value: str) -> tuple[str, int]:
    """The first address of a bootstrap list."""
    return parse_bootstrap_list(value)[0]


def parse_bootstrap_list(value: str) -> list[tuple[str, int]]:
    """Every address of a comma-separated bootstrap list (host:port,host:port,...)."""
    return [parse_address(item) for item in value.split(",") if item.strip()] or [("127.0.0.1", 9092)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check that a Kafka broker answers a Metadata request.")
    parser.add_argument(
        "--bootstrap", default="127.0.0.1:9092", help="host:port or a list host:port,... (default 127.0.0.1:9092)"
    )
    parser.add_argument("--brokers", type=int, default=1, help="succeed once this many brokers are listed (default 1)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to keep retrying (default 60)")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)

    addresses = parse_bootstrap_list(args.bootstrap)
    deadline = time.monotonic() + max(args.timeout, 0.0)
    last_error = "no attempt made"
    while True:
        for host, port in addresses:
            remaining = deadline - time.monotonic()
            try:
                version, brokers, cluster_id, controller_id = ping_once(host, port, max(1.0, min(5.0, remaining)))
                if brokers and len(brokers) >= args.brokers:
                    if not args.quiet:
                        listed = ", ".join(f"{n}@{h}:{p}" for n, h, p in brokers)
                        print(
                            f"kafka ok at {host}:{port}: brokers=[{listed}] cluster_id={cluster_id} "
                            f"controller={controller_id} (Metadata v{version})"
                        )
                    return 0
                last_error = f"{host}:{port} lists {len(brokers)} broker(s), waiting for {args.brokers}"
            except (OSError, ProtocolError) as exc:
                last_error = f"{host}:{port}: {type(exc).__name__}: {exc}"
        if time.monotonic() + 0.5 >= deadline:
            break
        time.sleep(0.5)
    print(
        f"kafka_ping: no Kafka broker answering at {args.bootstrap} within {args.timeout:g}s ({last_error})",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
