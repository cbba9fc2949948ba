"""Unit tests for the sharded-stock simulation (bench/sharded_stock.py) behind docs/SCALING.md's hot-coupon plan."""

from __future__ import annotations

import pytest

from bench.sharded_stock import arrivals, shard_of, simulate, split_stock, table


@pytest.mark.parametrize(("total", "shards"), [(1000, 1), (1000, 3), (7, 4), (3, 8), (0, 2)])
def test_sub_stocks_add_up_to_the_stock(total: int, shards: int) -> None:
    parts = split_stock(total, shards)
    assert len(parts) == shards and sum(parts) == total and max(parts) - min(parts) <= 1


def test_a_user_always_lands_on_the_same_shard() -> None:
    assert [shard_of("alice", 8) for _ in range(3)] == [shard_of("alice", 8)] * 3
    assert len({shard_of(f"u{n}", 8) for n in range(1000)}) == 8


def test_one_shard_is_exactly_the_unsharded_gate() -> None:
    stream = arrivals(3000, 0.2, seed=1)
    result = simulate(500, stream, 1)
    assert result.accepted == 500 and result.fcfs_misses == 0 and result.unfair_sold_out == 0
    assert result.redis_calls == result.requests


@pytest.mark.parametrize("policy", ["none", "steal", "sweep"])
@pytest.mark.parametrize("shards", [2, 4, 16])
def test_sharding_never_oversells_nor_accepts_a_user_twice(policy: str, shards: int) -> None:
    for seed in range(3):
        result = simulate(1000, arrivals(5000, 0.3, seed), shards, policy)
        assert result.accepted <= 1000 and result.double_accepted == 0
        assert result.accepted + result.left_unsold == 1000


def test_without_stealing_the_tail_is_unfair_and_stealing_fixes_it() -> None:
    stream = arrivals(10_000, 0.1, seed=3)
    plain = simulate(1000, stream, 8, "none")
    steal = simulate(1000, stream, 8, "steal")
    assert plain.unfair_sold_out > 0 and plain.fcfs_misses > 0 and plain.accepted == 1000
    assert steal.unfair_sold_out == 0 and steal.fcfs_misses == 0 and steal.accepted == 1000
    assert steal.redis_calls > plain.redis_calls


def test_when_demand_barely_exceeds_stock_a_sweep_sells_the_stranded_units() -> None:
    stream = arrivals(1050, 0.0, seed=5)
    plain = simulate(1000, stream, 8, "none")
    sweep = simulate(1000, stream, 8, "sweep")
    assert plain.left_unsold > 0, "some shard should be left with stock while others refused users"
    assert sweep.left_unsold == 0 and sweep.late_wins == plain.left_unsold and sweep.accepted == 1000


def test_stranded_stock_when_a_shard_gets_too_few_users() -> None:
    # 12 users for 12 units on 4 shards: hashing almost never gives each shard exactly 3 users.
    result = simulate(12, [f"u{n}" for n in range(12)], 4, "none")
    assert result.accepted + result.left_unsold == 12
    assert simulate(12, [f"u{n}" for n in range(12)], 4, "steal").left_unsold == 0


def test_table_averages_over_seeds() -> None:
    rows = table(200, 1000, [1, 4], seeds=range(2))
    assert [(r["shards"], r["policy"]) for r in rows] == [(1, "none"), (4, "none"), (4, "steal"), (4, "sweep")]
    assert all(r["double_accepted"] == 0 and r["max_accepted"] <= 200 for r in rows)
