"""Builds the Redis client: standalone with a blocking pool, or Redis Cluster when configured."""
from __future__ import annotations

from typing import Union

import redis
from redis.cluster import RedisCluster

RedisClient = Union[redis.Redis, RedisCluster]

# Short timeouts: a dead Redis must turn into a quick 503, not a hung request.
SOCKET_TIMEOUT = 2.0


def build_redis(url: str, cluster_url: str = "", max_connections: int = 64) -> RedisClient:
    if cluster_url:
        return RedisCluster.from_url(
            cluster_url,
            connection_pool_class=redis.BlockingConnectionPool,
            max_connections=max_connections,
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
