"""Unit tests for coupon.observability.progress: a line every `every` items and a final one."""

from __future__ import annotations

import io

from coupon.observability.progress import Progress


def test_a_line_every_n_items_and_a_final_line() -> None:
    out = io.StringIO()
    progress = Progress("mint users", total=2500, every=1000, stream=out)
    for _ in range(5):
        progress.advance(500)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[mint users] 1,000/2,500 (40%)")
    assert lines[1].startswith("[mint users] 2,000/2,500 (80%)")
    assert lines[2].startswith("[mint users] 2,500/2,500 (100%)") and "done in" in lines[2]
    assert len(lines) == 3


def test_big_steps_and_unknown_totals() -> None:
    out = io.StringIO()
    progress = Progress("republish", every=10, stream=out)
    progress.advance(35)  # one line, not three, for one big step
    progress.advance(3)
    progress.advance(2)
    progress.finish()
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[republish] 35") and "%" not in lines[0]
    assert lines[1].startswith("[republish] 40") and lines[-1].startswith("[republish] 40") and "done in" in lines[-1]
    assert len(lines) == 3
