"""The consumer's per-(coupon, user) locks on the real Redis, standalone and Cluster: pipelined SET NX and
compare-and-delete release, across several coupons (slots), surviving a lost script cache."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from coupon.adapters import keys
from coupon.adapters.locks import LockBusy, PairLocks

pytestmark = pytest.mark.parametrize("redis_mode", ["standalone", "cluster"], indirect=True)


def test_one_holder_per_pair_and_only_the_holder_releases(gate_client: Any, rdb: Any) -> None:
    locks = PairLocks(gate_client)
    coupons = [str(uuid.uuid4()) for _ in range(4)]  # on the cluster: most likely several masters
    pairs = [(c, f"user-{n}") for c in coupons for n in range(3)]
    locks.acquire(pairs, "first")
    with pytest.raises(LockBusy):
        locks.acquire([*pairs[:2], (coupons[0], "free-user")], "second", wait_s=0.2)
    # The failed attempt gave back what it took and left the first holder's locks alone.
    assert not rdb.exists(keys.pair_lock(coupons[0], "free-user"))
    assert all(rdb.get(keys.pair_lock(c, u)) == "first" for c, u in pairs)
    locks.release(pairs, "intruder")  # compare-and-delete: someone else's token changes nothing
    assert all(rdb.exists(keys.pair_lock(c, u)) for c, u in pairs)
    rdb.script_flush()  # Redis restarted and lost its scripts: release reloads unlock.lua and still works
    locks.release(pairs, "first")
    assert not any(rdb.exists(keys.pair_lock(c, u)) for c, u in pairs)
    locks.acquire(pairs, "second")
    assert rdb.get(keys.pair_lock(coupons[3], "user-2")) == "second"
