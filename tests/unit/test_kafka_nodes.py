"""ConnectedFirstManager's choice of broker, on made-up connection states (no network)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from coupon.adapters.kafka_nodes import ConnectedFirstManager


@dataclass
class Broker:
    node_id: Any
    host: str
    port: int


@dataclass
class Conn:
    connected: bool = True
    paused: set[Any] = field(default_factory=set)
    in_flight_requests: deque[Any] = field(default_factory=deque)


class Cluster:
    def __init__(self, brokers: list[Broker], bootstrap: list[Broker]) -> None:
        self._brokers, self._bootstrap = brokers, bootstrap

    def brokers(self) -> list[Broker]:
        return list(self._brokers)

    def bootstrap_brokers(self) -> list[Broker]:
        return list(self._bootstrap)


BROKERS = [Broker(1, "127.0.0.1", 9192), Broker(2, "127.0.0.1", 9194), Broker(3, "127.0.0.1", 9196)]


def manager(conns: dict[Any, Conn], bootstrap_port: int = 9194, backoff: dict[Any, Any] | None = None) -> Any:
    m: Any = ConnectedFirstManager.__new__(ConnectedFirstManager)  # no selector, no sockets: the choice alone
    m.cluster = Cluster(BROKERS, [Broker("bootstrap-0", "127.0.0.1", bootstrap_port)])
    m._conns, m._backoff = conns, backoff or {}
    return m


def busy(n: int) -> Conn:
    return Conn(in_flight_requests=deque(range(n)))


# The brokers are shuffled on every call: each choice is asked for many times and must come out the same.
TRIES = 20


def test_a_connected_broker_with_a_request_in_flight_beats_one_not_connected() -> None:
    picks = {manager({1: busy(1)}, bootstrap_port=9196).least_loaded_node() for _ in range(TRIES)}
    assert picks == {1}


def test_an_idle_connection_beats_busy_ones_and_the_least_busy_beats_the_rest() -> None:
    assert {manager({1: busy(3), 2: Conn(), 3: busy(1)}).least_loaded_node() for _ in range(TRIES)} == {2}
    assert {manager({1: busy(3), 3: busy(1)}).least_loaded_node() for _ in range(TRIES)} == {3}


def test_unconnected_paused_or_closed_connections_fall_back_to_the_bootstrap_broker() -> None:
    conns = {1: Conn(connected=False), 3: Conn(paused={"throttled"})}
    assert {manager(conns, bootstrap_port=9194).least_loaded_node() for _ in range(TRIES)} == {2}
    assert {manager({}, bootstrap_port=9192).least_loaded_node() for _ in range(TRIES)} == {1}


def test_a_bootstrap_broker_in_reconnect_backoff_leaves_the_choice_to_kafka_python() -> None:
    backoff = {2: (1, time.monotonic() + 60, 10_000)}
    picks = {manager({}, bootstrap_port=9194, backoff=backoff).least_loaded_node() for _ in range(50)}
    assert picks and picks <= {1, 3}
