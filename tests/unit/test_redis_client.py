"""Unit tests for the Redis Cluster settings: REDIS_CLUSTER_NODES parsing and which URL the client is built from."""

from __future__ import annotations

import pytest

from coupon.adapters.redis_client import cluster_startup, parse_cluster_nodes


def test_nodes_are_parsed_in_order_with_spaces_and_ipv6() -> None:
    assert parse_cluster_nodes(" 127.0.0.1:7100, 127.0.0.1:7101 ,[::1]:7102") == [
        ("127.0.0.1", 7100),
        ("127.0.0.1", 7101),
        ("::1", 7102),
    ]


@pytest.mark.parametrize("bad", ["", " , ", "127.0.0.1", "127.0.0.1:", ":7100", "host:port"])
def test_malformed_nodes_are_refused_with_the_variable_named(bad: str) -> None:
    with pytest.raises(ValueError, match="REDIS_CLUSTER_NODES"):
        parse_cluster_nodes(bad)


def test_nodes_alone_build_the_url_from_the_first_node_and_keep_the_rest_as_startup_nodes() -> None:
    assert cluster_startup(cluster_nodes="10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:7002") == (
        "redis://10.0.0.1:7000",
        [("10.0.0.2", 7001), ("10.0.0.3", 7002)],
    )


def test_a_cluster_url_wins_and_keeps_its_credentials() -> None:
    assert cluster_startup("redis://:pw@10.0.0.9:7000/0", "") == ("redis://:pw@10.0.0.9:7000/0", [])
    assert cluster_startup("redis://:pw@10.0.0.9:7000", "10.0.0.2:7001") == (
        "redis://:pw@10.0.0.9:7000",
        [("10.0.0.2", 7001)],
    )
