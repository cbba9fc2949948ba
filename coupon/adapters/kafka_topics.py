"""Creates the service's Kafka topics (idempotent)."""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from coupon.domain.errors import KafkaUnavailable


def ensure_topics(bootstrap_servers: str, topics: dict[str, int], timeout_ms: int = 10_000) -> list[str]:
    """Create each missing topic with its partition count; returns the names created."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers.split(","),
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
            client_id="coupon-admin",
        )
    except KafkaError as exc:
        raise KafkaUnavailable() from exc
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for name, partitions in topics.items():
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


def delete_topics(bootstrap_servers: str, names: list[str], timeout_ms: int = 10_000) -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","), request_timeout_ms=timeout_ms, client_id="coupon-admin"
    )
    try:
        existing = set(admin.list_topics())
        doomed = [n for n in names if n in existing]
        if doomed:
            admin.delete_topics(doomed)
    finally:
        admin.close()
