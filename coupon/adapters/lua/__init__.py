"""The Lua scripts, read once from this folder, and the ways to run many calls of one in a pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import redis
from redis.cluster import RedisCluster

from coupon.adapters.redis_client import RedisClient

_DIR = Path(__file__).parent


@cache
def source(name: str) -> str:
    return (_DIR / f"{name}.lua").read_text()


@cache
def sha(name: str) -> str:
    return hashlib.sha1(source(name).encode()).hexdigest()


def run_many(client: RedisClient, name: str, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """Run script `name` once per (keys, args) call, all in one pipeline; one reply (or exception) per call.

    EVALSHA goes through execute_command: a Script object would add a SCRIPT EXISTS round trip per pipeline, and
    redis-py's cluster pipeline refuses both Script objects and its own evalsha(). The calls a node refused with
    NOSCRIPT (it restarted and lost its script cache) are run once more after loading the script, and only those:
    on a cluster the other nodes' calls did run, and running a reservation twice would turn it into a duplicate.
    Connection errors propagate to the caller.
    """
    if not calls:
        return []
    digest = sha(name)
    replies = _pipeline(client, digest, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
    if missing:
        client.script_load(source(name))
        for i, reply in zip(missing, _pipeline(client, digest, [calls[i] for i in missing])):
            replies[i] = reply
    return replies


def run_grouped(
    client: RedisClient, name: str, groups: Sequence[tuple[Sequence[str], Sequence[Any]]], max_groups: int = 500
) -> list[Any]:
    """Run script `name`, written for repeated (keys, args) groups, on as few calls as the keys allow.

    Groups of one hash slot share one call (on a single Redis every group does), at most `max_groups` a call so
    one script never blocks Redis for long; the calls go out in one pipeline through run_many. The script answers
    each group with the same number of values, in order. Returns one reply slice per group, or the exception of
    the call that carried it.
    """
    if not groups:
        return []
    by_slot: dict[int, list[int]] = {}
    if isinstance(client, RedisCluster):
        for index, (group_keys, _) in enumerate(groups):
            by_slot.setdefault(client.keyslot(group_keys[0]), []).append(index)
    else:
        by_slot[0] = list(range(len(groups)))
    members = [
        chunk
        for indexes in by_slot.values()
        for chunk in (indexes[i : i + max_groups] for i in range(0, len(indexes), max_groups))
    ]
    calls = [
        ([key for i in chunk for key in groups[i][0]], [arg for i in chunk for arg in groups[i][1]])
        for chunk in members
    ]
    out: list[Any] = [None] * len(groups)
    for chunk, reply in zip(members, run_many(client, name, calls)):
        if isinstance(reply, BaseException):
            for i in chunk:
                out[i] = reply
            continue
        width = len(reply) // len(chunk)
        for n, i in enumerate(chunk):
            out[i] = reply[n * width : (n + 1) * width]
    return out


def _pipeline(client: RedisClient, digest: str, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    if isinstance(client, RedisCluster):
        # Name each call's node (from the slot cache, no I/O). Without it redis-py's cluster pipeline asks its
        # default node for EVALSHA's keys (COMMAND GETKEYS) before routing, and once that node is dead it never
        # picks another: after a master's failover every gate call failed for good. A redirected or failed call is
        # retried by redis-py with key-based routing, which reads EVALSHA's keys itself.
        for call_keys, args in calls:
            pipe.execute_command(
                "EVALSHA",
                digest,
                len(call_keys),
                *call_keys,
                *args,
                target_nodes=client.get_node_from_key(call_keys[0]),
            )
    else:
        for call_keys, args in calls:
            pipe.execute_command("EVALSHA", digest, len(call_keys), *call_keys, *args)
    return pipe.execute(raise_on_error=False)
