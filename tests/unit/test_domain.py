"""Unit tests for coupon.domain.vocabulary time helpers: iso() and to_epoch_ms()."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from coupon.domain.vocabulary import iso, to_epoch_ms, utcnow

EPOCH = datetime(1970, 1, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 11, 27, 9, 0, 0), "2026-11-27T09:00:00.000Z"),
        (datetime(2026, 11, 27, 9, 0, 0, 123456), "2026-11-27T09:00:00.123Z"),
        (datetime(2000, 1, 1), "2000-01-01T00:00:00.000Z"),
        (datetime(2999, 12, 31, 23, 59, 59, 999999), "2999-12-31T23:59:59.999Z"),
    ],
)
def test_iso_renders_milliseconds_and_z(value: datetime, expected: str) -> None:
    assert iso(value) == expected


def test_iso_of_none_is_none() -> None:
    assert iso(None) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (EPOCH, 0),
        (datetime(1970, 1, 1, 0, 0, 1), 1000),
        (datetime(2026, 11, 27, 9, 0, 0), 1_795_770_000_000),
        (datetime(2026, 11, 27, 9, 0, 0, 1000), 1_795_770_000_001),
        (datetime(2026, 11, 27, 9, 0, 0, 999999), 1_795_770_000_999),
        (datetime(2000, 1, 1), 946_684_800_000),
    ],
)
def test_to_epoch_ms_treats_naive_values_as_utc(value: datetime, expected: int) -> None:
    assert to_epoch_ms(value) == expected


@pytest.mark.parametrize("offset_ms", [0, 1, 7, 999, 123_456_789, 86_400_000 * 365])
def test_to_epoch_ms_is_exact_to_the_millisecond(offset_ms: int) -> None:
    value = datetime(2026, 1, 1) + timedelta(milliseconds=offset_ms)
    assert to_epoch_ms(value) == (value - EPOCH) // timedelta(milliseconds=1)


def test_utcnow_is_naive() -> None:
    assert utcnow().tzinfo is None
