"""Creates the service's Kafka topics (idempotent) and reads back their replication settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from coupon.domain.errors import KafkaUnavailable

MIN_ISR = "min.insync.replicas"


@dataclass(frozen=True)
class TopicSettings:
    """A topic as the brokers hold it: partitions, replicas per partition, and its min.insync.replicas."""

    name: str
    partitions: int
    replication_factor: int
    min_insync_replicas: int | None


def _admin(bootstrap_servers: str, timeout_ms: int) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=bootstrap_servers.split(","),
            request_timeout_ms=timeout_ms,
            bootstrap_timeout_ms=timeout_ms,
            client_id="coupon-admin",
        )
    except KafkaError as exc:
        raise KafkaUnavailable() from exc


def ensure_topics(
    bootstrap_servers: str,
    topics: dict[str, int],
    timeout_ms: int = 10_000,
    replication_factor: int = 1,
    min_insync_replicas: int | None = None,
) -> list[str]:
    """Create each missing topic with its partition count, replication factor and (when given) topic config
    min.insync.replicas; returns the names created. Existing topics are left as they are (see topic_settings)."""
    admin = _admin(bootstrap_servers, timeout_ms)
    configs = {MIN_ISR: str(min_insync_replicas)} if min_insync_replicas is not None else {}
    created: list[str] = []
    try:
        existing = set(admin.list_topics())
        for name, partitions in topics.items():
            if name in existing:
                continue
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name,
                            num_partitions=partitions,
                            replication_factor=replication_factor,
                            topic_configs=configs,
                        )
                    ],
                    # Every broker knows it (and each partition has a leader) before we return: a describe or a
                    # produce right after must not miss it.
                    wait_for_metadata=True,
                )
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    except KafkaError as exc:
        raise KafkaUnavailable(f"Kafka refused to create the topics: {exc}") from exc
    finally:
        admin.close()
    return created


def topic_settings(bootstrap_servers: str, names: list[str], timeout_ms: int = 10_000) -> dict[str, TopicSettings]:
    """The settings of those topics that exist: partitions, replication factor (the most replicas any partition
    has) and min.insync.replicas (the topic's own value, else the broker default it inherits)."""
    admin = _admin(bootstrap_servers, timeout_ms)
    try:
        described: list[dict[str, Any]] = [
            t for t in admin.describe_topics(names) if t.get("error_code", 0) == 0 and t.get("partitions")
        ]
        found = [str(t["name"]) for t in described]
        min_isr: dict[str, int | None] = dict.fromkeys(found)
        if found:
            # kafka-python takes the names of the configs to read as a list (its stubs say a mapping).
            only = cast(Any, [MIN_ISR])
            answer = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name, only) for name in found])
            for name, values in (answer.get("topic") or {}).items():
                raw = (values.get(MIN_ISR) or {}).get("value")
                min_isr[name] = int(raw) if raw not in (None, "") else None
    except KafkaError as exc:
        raise KafkaUnavailable() from exc
    finally:
        admin.close()
    return {
        str(t["name"]): TopicSettings(
            name=str(t["name"]),
            partitions=len(t["partitions"]),
            replication_factor=max(len(p["replica_nodes"]) for p in t["partitions"]),
            min_insync_replicas=min_isr.get(str(t["name"])),
        )
        for t in described
    }


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
