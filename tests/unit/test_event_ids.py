"""Event ids minted per issue request (coupon.domain.identifiers.new_event_id): the shape and uniqueness of
uuid4().hex without a urandom call per request."""

from __future__ import annotations

import os
import re

from coupon.domain.identifiers import new_event_id


def test_event_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [new_event_id() for _ in range(100_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_forked_child_mints_under_a_prefix_of_its_own() -> None:
    parent = new_event_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert len(child) == 32
    assert child[:16] != parent[:16]
    assert new_event_id()[:16] == parent[:16]
