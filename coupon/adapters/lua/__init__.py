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
    return run_many_replicated(client, name, calls, 0, 0)[0]


def run_many_replicated(
    client: RedisClient,
    name: str,
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    replicas: int,
    timeout_ms: int,
) -> tuple[list[Any], list[bool]]:
    """run_many, and with `replicas` > 0 a WAIT after the calls on each node's connection, in the same pipeline.

    WAIT counts the replicas that acknowledged every write this connection made so far, so one per node covers all
    of that node's calls. Returns the replies and, per call, whether enough replicas acknowledged it in time
    (always True without replicas). A failover promotes a replica: what it acknowledged survives the master.
    """
    if not calls:
        return [], []
    digest = sha(name)
    replies, acked = _pipeline(client, digest, calls, replicas, timeout_ms)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
    if missing:
        client.script_load(source(name))
        again, again_acked = _pipeline(client, digest, [calls[i] for i in missing], replicas, timeout_ms)
        for i, reply, ok in zip(missing, again, again_acked):
            replies[i], acked[i] = reply, ok
    return replies, acked


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


def _pipeline(
    client: RedisClient,
    digest: str,
    calls: Sequence[tuple[Sequence[Any], Sequence[Any]]],
    replicas: int = 0,
    timeout_ms: int = 0,
) -> tuple[list[Any], list[bool]]:
    pipe = client.pipeline(transaction=False)
    if isinstance(client, RedisCluster):
        # Name each call's node (from the slot cache, no I/O). Without it redis-py's cluster pipeline asks its
        # default node for EVALSHA's keys (COMMAND GETKEYS) before routing, and once that node is dead it never
        # picks another: after a master's failover every gate call failed for good. A redirected or failed call is
        # retried by redis-py with key-based routing, which reads EVALSHA's keys itself.
        nodes = [client.get_node_from_key(call_keys[0]) for call_keys, _ in calls]
        for (call_keys, args), node in zip(calls, nodes):
            pipe.execute_command("EVALSHA", digest, len(call_keys), *call_keys, *args, target_nodes=node)
        # The cluster pipeline sends each node's commands on one connection, in order: a WAIT named to the node
        # follows that node's calls on their connection.
        order = list(dict.fromkeys(node.name for node in nodes))
        if replicas:
            by_name = {node.name: node for node in nodes}
            for name in order:
                pipe.execute_command("WAIT", replicas, timeout_ms, target_nodes=by_name[name])
        node_of = [order.index(node.name) for node in nodes]
    else:
        for call_keys, args in calls:
            pipe.execute_command("EVALSHA", digest, len(call_keys), *call_keys, *args)
        if replicas:
            pipe.execute_command("WAIT", replicas, timeout_ms)
        node_of = [0] * len(calls)
    replies = pipe.execute(raise_on_error=False)
    scripts, waits = replies[: len(calls)], replies[len(calls) :]
    if not replicas:
        return scripts, [True] * len(calls)
    enough = [isinstance(count, int) and count >= replicas for count in waits]
    return scripts, [enough[n] for n in node_of]
