"""Simulation of one hot coupon's stock split over K Redis slots: exact totals, and what it costs in fairness.

Pure Python, no I/O (unit-tested in tests/unit/test_sharded_stock.py). It models the gate the scaling plan
proposes for a coupon too hot for one Redis node (docs/SCALING.md):

- the stock S is split into K sub-stocks (`coupon:{<id>#k}:…`, one hash slot each, so K nodes share the load);
- a user always goes to shard hash(user) % K, where the duplicate check lives, so one user can never hold two;
- each shard runs the unchanged reserve.lua on its own sub-stock and hands out local ranks.

Policies once a user's home shard is empty while others still have stock:

- "none":  answer sold out (one Redis call per request, the cheapest; unfair at the tail);
- "steal": the home shard records the user, then the request tries the other shards in a fixed order and takes
           a unit from the first that has one (extra calls only for requests that meet an empty home shard);
- "sweep": answer sold out, and after the sale hand the stranded units to the earliest refused users (a
           second pass that turns a few "sold out" answers into late wins).

What the simulation reports per run: units accepted (never above S), users accepted twice (always 0),
"unfair" sold-outs (refused while another shard still had stock), units left unsold, how far the winners
differ from the first S distinct arrivals (global first-come-first-served), and the Redis calls spent.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass

POLICIES = ("none", "steal", "sweep")


def shard_of(user: str, shards: int) -> int:
    """Stable across processes and runs (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(user.encode(), digest_size=8).digest(), "big") % shards


def split_stock(total: int, shards: int) -> list[int]:
    """Sub-stocks that add up to exactly `total`; the first total % shards shards get one more."""
    base, extra = divmod(total, shards)
    return [base + (1 if k < extra else 0) for k in range(shards)]


@dataclass(frozen=True)
class SimResult:
    shards: int
    policy: str
    stock: int
    requests: int
    distinct_users: int
    accepted: int
    double_accepted: int
    unfair_sold_out: int
    left_unsold: int
    late_wins: int
    fcfs_misses: int
    redis_calls: int

    def row(self) -> dict[str, int | str]:
        return asdict(self)


def simulate(stock: int, arrivals: Iterable[str], shards: int, policy: str = "none") -> SimResult:
    """Replay `arrivals` (user ids in arrival order, repeats allowed) against K sub-stocks."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}")
    left = split_stock(stock, shards)
    participants: list[set[str]] = [set() for _ in range(shards)]
    winners: list[str] = []
    won: set[str] = set()
    refused_while_stock: list[str] = []
    unfair = 0
    calls = 0
    first_seen: list[str] = []
    seen: set[str] = set()
    requests = 0
    for user in arrivals:
        requests += 1
        if user not in seen:
            seen.add(user)
            first_seen.append(user)
        home = shard_of(user, shards)
        calls += 1
        if user in participants[home]:
            continue  # duplicate: answered from the home shard, nothing changes
        if left[home] > 0:
            left[home] -= 1
            participants[home].add(user)
            winners.append(user)
            won.add(user)
            continue
        elsewhere = sum(left) > 0
        if policy == "steal" and elsewhere:
            participants[home].add(user)  # the home shard remembers the user first: uniqueness stays exact
            for step in range(1, shards):
                donor = (home + step) % shards
                calls += 1
                if left[donor] > 0:
                    left[donor] -= 1
                    winners.append(user)
                    won.add(user)
                    break
            continue
        if elsewhere:
            unfair += 1
            if user not in refused_while_stock:
                refused_while_stock.append(user)
    late = 0
    if policy == "sweep":
        for user in refused_while_stock:
            if sum(left) == 0:
                break
            if user in won:
                continue
            donor = next(k for k in range(shards) if left[k] > 0)
            left[donor] -= 1
            calls += 1
            winners.append(user)
            won.add(user)
            late += 1
    first_s = set(first_seen[:stock])
    return SimResult(
        shards=shards,
        policy=policy,
        stock=stock,
        requests=requests,
        distinct_users=len(seen),
        accepted=len(winners),
        double_accepted=len(winners) - len(set(winners)),
        unfair_sold_out=unfair,
        left_unsold=sum(left),
        late_wins=late,
        fcfs_misses=len(first_s - won),
        redis_calls=calls,
    )


def arrivals(users: int, retry_share: float, seed: int) -> list[str]:
    """`users` distinct users at random times; a `retry_share` of them send their request again later."""
    rng = random.Random(seed)
    timed: list[tuple[float, str]] = []
    for n in range(users):
        at = rng.random()
        timed.append((at, f"user-{n}"))
        if rng.random() < retry_share:
            timed.append((at + rng.random() * (1 - at), f"user-{n}"))
    timed.sort()
    return [user for _, user in timed]


def table(
    stock: int, users: int, shard_counts: Iterable[int], seeds: Iterable[int], retry_share: float = 0.1
) -> list[dict[str, float | int | str]]:
    """Mean of each measure over the seeds, per (K, policy)."""
    rows: list[dict[str, float | int | str]] = []
    seeds = list(seeds)
    streams = [arrivals(users, retry_share, seed) for seed in seeds]
    for shards in shard_counts:
        for policy in POLICIES if shards > 1 else ("none",):
            results = [simulate(stock, stream, shards, policy) for stream in streams]
            row: dict[str, float | int | str] = {"shards": shards, "policy": policy, "stock": stock, "users": users}
            for field in (
                "accepted",
                "double_accepted",
                "unfair_sold_out",
                "left_unsold",
                "late_wins",
                "fcfs_misses",
                "redis_calls",
            ):
                values = [getattr(r, field) for r in results]
                row[field] = round(sum(values) / len(values), 1)
            row["max_accepted"] = max(r.accepted for r in results)
            rows.append(row)
    return rows
