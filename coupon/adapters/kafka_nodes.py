"""Which broker a kafka-python client asks when any broker will do: one it is connected to, as the Java client picks."""

from __future__ import annotations

import random
from typing import Any, cast

from kafka.net.compat import KafkaNetClient
from kafka.net.manager import KafkaConnectionManager
from kafka.net.selector import NetworkSelector


class ConnectedFirstManager(KafkaConnectionManager):
    """kafka-python's connection manager, with the Java client's order for "the least loaded node".

    The producer asks that node for its producer id and for metadata. kafka-python takes a broker it is not
    connected to over a connected one with a request in flight, and a new producer (its bootstrap connection
    closed) picks one of all the brokers at random. A frozen broker (SIGSTOP, a long GC pause) stays in the
    metadata until the controller fences it (broker.session.timeout.ms, 9 s by default), and the sender thread
    then waits request_timeout_ms for its handshake, blocking every record past its delivery timeout: one
    producer in three, replaced while a follower was frozen, failed a whole wave with 503 E5034. The order here:
    a connected broker with nothing in flight, then the connected one with the fewest requests in flight, then a
    broker at the bootstrap address (it has just answered), and only then kafka-python's own choice.
    """

    def least_loaded_node(self) -> Any:
        conns = cast(dict[Any, Any], cast(Any, self)._conns)
        brokers = list(self.cluster.brokers())
        random.shuffle(brokers)  # spread the load as kafka-python does
        fewest, chosen = float("inf"), None
        for broker in brokers:
            conn = conns.get(broker.node_id)
            if conn is None or not conn.connected or conn.paused:
                continue
            in_flight = len(conn.in_flight_requests)
            if in_flight == 0:
                return broker.node_id
            if in_flight < fewest:
                fewest, chosen = in_flight, broker.node_id
        if chosen is not None:
            return chosen
        bootstrap = {(b.host, b.port) for b in self.cluster.bootstrap_brokers()}
        for broker in brokers:
            if (broker.host, broker.port) in bootstrap and self.connection_delay(broker.node_id) <= 0:
                return broker.node_id
        return super().least_loaded_node()  # type: ignore[no-untyped-call]  # unannotated in the stubs


class ConnectedFirstClient(KafkaNetClient):
    """The client a KafkaProducer builds (its `kafka_client` setting), with ConnectedFirstManager."""

    def __init__(self, **configs: Any) -> None:
        net = NetworkSelector(**configs)
        super().__init__(net=net, manager=ConnectedFirstManager(net, **configs), **configs)
