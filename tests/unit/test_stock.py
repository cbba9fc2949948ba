"""Unit tests for coupon.services.catalog.Stock: remaining stock never goes negative."""

from __future__ import annotations

import pytest

from coupon.services.catalog import Stock


@pytest.mark.parametrize(
    ("total", "reserved", "expected"),
    [(500, 0, 500), (500, 499, 1), (500, 500, 0), (10, 3, 7)],
)
def test_remaining_is_total_minus_reserved(total: int, reserved: int, expected: int) -> None:
    assert Stock(total=total, reserved=reserved, issued=0).remaining == expected


@pytest.mark.parametrize(("total", "reserved"), [(500, 501), (1, 1000), (0, 5)])
def test_remaining_is_never_negative(total: int, reserved: int) -> None:
    assert Stock(total=total, reserved=reserved, issued=total).remaining == 0


def test_remaining_ignores_issued_count() -> None:
    assert Stock(total=10, reserved=4, issued=2).remaining == Stock(total=10, reserved=4, issued=9).remaining
