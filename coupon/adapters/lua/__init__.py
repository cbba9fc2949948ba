"""The Lua scripts, read once from this folder, and the one way to run many calls of one in a pipeline."""
from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any, Sequence

import redis

_DIR = Path(__file__).parent


@cache
def source(name: str) -> str:
    return (_DIR / f"{name}.lua").read_text()


@cache
def sha(name: str) -> str:
    return hashlib.sha1(source(name).encode()).hexdigest()


def run_many(client: Any, name: str, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
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


def _pipeline(client: Any, digest: str, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    for call_keys, args in calls:
        pipe.execute_command("EVALSHA", digest, len(call_keys), *call_keys, *args)
    return pipe.execute(raise_on_error=False)
