"""Builds the Redis client: standalone with a blocking pool, or Redis Cluster when configured."""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster

RedisClient = redis.Redis | RedisCluster

# Every failure of a Redis dependency (a down, "still loading" or frozen node, a cluster without a master for a slot,
# the gevent socket's own timeout): callers turn these into 503s, or "outcome unknown" where a command may have run;
# the rq worker and scheduler wait them out. Anything else from Redis is a bug, and stays fatal.
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ClusterError, TimeoutError)

# Short timeouts: a dead Redis must turn into a quick 503, not a hung request.
SOCKET_TIMEOUT = 2.0


def parse_cluster_nodes(nodes: str) -> list[tuple[str, int]]:
    """'host:port,host:port' → [(host, port), ...]; a clear error for anything else."""
    out: list[tuple[str, int]] = []
    for item in (part.strip() for part in nodes.split(",")):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"REDIS_CLUSTER_NODES: {item!r} is not host:port")
        out.append((host.strip("[]"), int(port)))
    if not out:
        raise ValueError("REDIS_CLUSTER_NODES is empty")
    return out


def cluster_startup(cluster_url: str = "", cluster_nodes: str = "") -> tuple[str, list[tuple[str, int]]]:
    """The URL the cluster client is built from (credentials, options) and the other nodes to ask first."""
    if cluster_url:
        return cluster_url, [] if not cluster_nodes else parse_cluster_nodes(cluster_nodes)
    nodes = parse_cluster_nodes(cluster_nodes)
    host, port = nodes[0]
    return f"redis://{host}:{port}", nodes[1:]


def build_redis(url: str, cluster_url: str = "", max_connections: int = 64, cluster_nodes: str = "") -> RedisClient:
    if cluster_url or cluster_nodes:
        # from_url is the path on which redis-py gives every node the blocking pool; the extra startup
        # nodes only make discovery survive the first node being down.
        first, others = cluster_startup(cluster_url, cluster_nodes)
        if urlsplit(first).scheme not in ("redis", "rediss"):
            raise ValueError(f"REDIS_CLUSTER_URL must be redis:// or rediss://, got {first!r}")
        return RedisCluster.from_url(
            first,
            startup_nodes=[ClusterNode(host, port) for host, port in others],
            connection_pool_class=redis.BlockingConnectionPool,
            max_connections=max_connections,
            timeout=SOCKET_TIMEOUT,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
        )
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
    )
    return redis.Redis(connection_pool=pool)
