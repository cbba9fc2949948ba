"""Unit tests for the admin API's pure parts: the PATCH body, the list queries, the page cursors, and what a change
is called (coupon.http.parsing, coupon.http.cursors, coupon.services.lifecycle's pure helpers)."""

from __future__ import annotations

import base64
import contextlib
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from coupon.domain.commands import CouponPatch, CouponPosition, RankPosition
from coupon.domain.errors import MalformedJson, ValidationFailed
from coupon.domain.models import Coupon
from coupon.domain.vocabulary import CouponAction, CouponPhase, CouponStatus, CouponType, DiscountType, phase_of
from coupon.http.cursors import (
    MAX_CURSOR_LENGTH,
    decode_coupon_cursor,
    decode_event_cursor,
    decode_rank_cursor,
    encode_coupon_cursor,
    encode_event_cursor,
    encode_rank_cursor,
)
from coupon.http.parsing import (
    parse_coupon_patch,
    parse_events_query,
    parse_failure_query,
    parse_ledger_query,
    parse_listing_query,
)
from coupon.services.lifecycle import action_of, changed_values, describe

NOW = datetime(2026, 11, 27, 12, 0, 0)


def _fields(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [p["field"] for p in exc.value.data]


# --- the PATCH body ---------------------------------------------------------------------------------------------


def test_patch_with_every_field() -> None:
    patch = parse_coupon_patch(
        {
            "status": "DISABLED",
            "issueStartsAt": "2026-11-27T09:00:00Z",
            "expiresAt": "2026-11-28T09:00:00+09:00",
            "totalQuantity": 250,
            "name": "  Pizza rush  ",
        }
    )
    assert patch == CouponPatch(
        status=CouponStatus.DISABLED,
        issue_starts_at=datetime(2026, 11, 27, 9),
        expires_at=datetime(2026, 11, 28, 0),
        total_quantity=250,
        name="Pizza rush",
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "ACTIVE"}, CouponPatch(status=CouponStatus.ACTIVE)),
        ({"expiresAt": "2026-11-27T12:00:00"}, CouponPatch(expires_at=NOW)),  # no offset: UTC
        ({"totalQuantity": 1}, CouponPatch(total_quantity=1)),
        ({"totalQuantity": 10_000_000}, CouponPatch(total_quantity=10_000_000)),
        ({"name": "x"}, CouponPatch(name="x")),
    ],
)
def test_patch_with_one_field(body: dict[str, Any], expected: CouponPatch) -> None:
    assert parse_coupon_patch(body) == expected


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, ["body"]),
        ({"type": "PIZZA"}, ["type"]),
        ({"status": None}, ["status"]),
        ({"name": None, "totalQuantity": None}, ["totalQuantity", "name"]),
        ({"status": "paused"}, ["status"]),
        ({"status": ["ACTIVE"]}, ["status"]),
        ({"issueStartsAt": 5}, ["issueStartsAt"]),
        ({"expiresAt": "2026-13-01T00:00:00Z"}, ["expiresAt"]),
        ({"expiresAt": "1999-12-31T00:00:00Z"}, ["expiresAt"]),
        ({"issueStartsAt": "2026-11-28T00:00:00Z", "expiresAt": "2026-11-28T00:00:00Z"}, ["expiresAt"]),
        ({"totalQuantity": 0}, ["totalQuantity"]),
        ({"totalQuantity": -3}, ["totalQuantity"]),
        ({"totalQuantity": 10_000_001}, ["totalQuantity"]),
        ({"totalQuantity": 2.0}, ["totalQuantity"]),
        ({"totalQuantity": False}, ["totalQuantity"]),
        ({"name": ""}, ["name"]),
        ({"name": " \t "}, ["name"]),
        ({"name": "n" * 101}, ["name"]),
        ({"name": 7}, ["name"]),
        ({"status": "ON", "totalQuantity": "many", "colour": "red"}, ["colour", "status", "totalQuantity"]),
    ],
)
def test_bad_patches_list_every_problem(body: dict[str, Any], fields: list[str]) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_coupon_patch(body)
    assert _fields(exc) == fields
    assert exc.value.code == "E4000"


@pytest.mark.parametrize("body", [None, [], "status", 3])
def test_a_patch_must_be_an_object(body: Any) -> None:
    with pytest.raises(MalformedJson):
        parse_coupon_patch(body)


# --- the list queries -------------------------------------------------------------------------------------------


def test_listing_defaults_and_filters() -> None:
    default = parse_listing_query({})
    assert (default.status, default.phase, default.limit, default.after) == (None, None, 20, None)
    query = parse_listing_query({"status": "DISABLED", "phase": "upcoming", "limit": "100"})
    assert (query.status, query.phase, query.limit) == (CouponStatus.DISABLED, CouponPhase.UPCOMING, 100)
    position = CouponPosition(datetime(2026, 11, 27, 9, 0, 0, 123456), str(uuid.uuid4()))
    assert parse_listing_query({"cursor": encode_coupon_cursor(position)}).after == position


@pytest.mark.parametrize(
    ("args", "fields"),
    [
        ({"limit": "0"}, ["limit"]),
        ({"limit": "101"}, ["limit"]),
        ({"limit": "1e2"}, ["limit"]),
        ({"limit": "٣"}, ["limit"]),  # a non-ASCII digit
        ({"limit": "00020"}, ["limit"]),  # more than four characters
        ({"status": "active"}, ["status"]),
        ({"phase": "Live"}, ["phase"]),
        ({"cursor": "%%%"}, ["cursor"]),
        ({"order": "asc", "limit": "x"}, ["order", "limit"]),
    ],
)
def test_bad_listing_queries(args: dict[str, str], fields: list[str]) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_listing_query(args)
    assert _fields(exc) == fields


def test_ledger_and_events_queries() -> None:
    assert parse_ledger_query({}).limit == 100 and parse_ledger_query({"limit": "1000"}).limit == 1000
    assert parse_ledger_query({"cursor": encode_rank_cursor(RankPosition(7, 42))}).after == RankPosition(7, 42)
    assert parse_events_query({}).limit == 20 and parse_events_query({"limit": "100"}).limit == 100
    assert parse_events_query({"cursor": encode_event_cursor(99)}).before_id == 99
    for parse, args in [
        (parse_ledger_query, {"limit": "1001"}),
        (parse_events_query, {"limit": "101"}),
        (parse_ledger_query, {"cursor": encode_event_cursor(1)}),
        (parse_events_query, {"cursor": encode_rank_cursor(RankPosition(1, 1))}),
        (parse_events_query, {"phase": "live"}),
    ]:
        with pytest.raises(ValidationFailed):
            parse(args)


# --- the cursors ------------------------------------------------------------------------------------------------

POSITIONS = st.builds(
    CouponPosition,
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2999, 12, 31)),
    st.uuids().map(str),
)


@given(POSITIONS)
def test_coupon_cursors_round_trip(position: CouponPosition) -> None:
    text = encode_coupon_cursor(position)
    assert decode_coupon_cursor(text) == position
    assert len(text) <= MAX_CURSOR_LENGTH and "=" not in text


@given(st.integers(0, 2**63 - 1), st.integers(0, 2**63 - 1))
def test_rank_and_event_cursors_round_trip(rank: int, row_id: int) -> None:
    assert decode_rank_cursor(encode_rank_cursor(RankPosition(rank, row_id))) == RankPosition(rank, row_id)
    assert decode_event_cursor(encode_event_cursor(row_id)) == row_id


@given(st.text(max_size=300))
def test_any_text_is_a_cursor_or_a_value_error(text: str) -> None:
    for decode in (decode_coupon_cursor, decode_rank_cursor, decode_event_cursor):
        with contextlib.suppress(ValueError):
            decode(text)


def _raw(values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!",
        _raw(["c", "2026-11-27T09:00:00.000000"]),  # too short
        _raw(["i", 1, 2]),  # another list's
        _raw(["c", "2026-11-27T09:00:00.000000", "not-a-uuid"]),
        _raw(["c", "2026-11-27T09:00:00.000000", str(uuid.UUID(int=0xABCDEF)).upper()]),
        _raw(["c", "2026-11-27T09:00:00+00:00", str(uuid.UUID(int=1))]),  # an offset: never ours
        _raw(["c", "yesterday", str(uuid.UUID(int=1))]),
        _raw({"c": 1}),
        _raw(["c", 5, str(uuid.UUID(int=1))]),
        _raw(["c", "2026-11-27T09:00:00.000000", str(uuid.UUID(int=1))]) + "==",  # padded: not canonical
        base64.urlsafe_b64encode(b'["c",  "2026-11-27T09:00:00.000000", "x"]').decode().rstrip("="),
        "A" * (MAX_CURSOR_LENGTH + 1),
    ],
)
def test_bad_coupon_cursors(text: str) -> None:
    with pytest.raises(ValueError):
        decode_coupon_cursor(text)


@pytest.mark.parametrize(
    "values", [["i", -1, 1], ["i", 1, True], ["i", 1.5, 1], ["i", 2**63, 1], ["i", "1", 1], ["i", 1]]
)
def test_bad_rank_cursors(values: list[Any]) -> None:
    with pytest.raises(ValueError):
        decode_rank_cursor(_raw(values))


# --- what a change is called ------------------------------------------------------------------------------------


def _coupon(**fields: Any) -> Coupon:
    values: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "name": "pizza",
        "type": CouponType.PIZZA,
        "discount_type": DiscountType.FIXED,
        "discount_value": Decimal("3000"),
        "total_quantity": 100,
        "issued_count": 0,
        "issue_starts_at": NOW - timedelta(hours=1),
        "expires_at": NOW + timedelta(days=1),
        "status": CouponStatus.ACTIVE,
        "created_at": NOW - timedelta(hours=2),
    }
    values.update(fields)
    return Coupon(**values)


def test_only_real_changes_count() -> None:
    coupon = _coupon()
    same = CouponPatch(status=CouponStatus.ACTIVE, total_quantity=100, name="pizza", expires_at=coupon.expires_at)
    assert changed_values(coupon, same) == {}
    new = changed_values(coupon, CouponPatch(total_quantity=150, name="pizza", status=CouponStatus.DISABLED))
    assert new == {"total_quantity": 150, "status": CouponStatus.DISABLED}
    assert describe(coupon, new) == {
        "status": {"from": "ACTIVE", "to": "DISABLED"},
        "totalQuantity": {"from": 100, "to": 150},
    }


@pytest.mark.parametrize(
    ("new", "action"),
    [
        ({"status": CouponStatus.DISABLED, "total_quantity": 5}, CouponAction.DISABLED),
        ({"status": CouponStatus.ACTIVE}, CouponAction.ENABLED),
        ({"expires_at": NOW}, CouponAction.CLOSED),
        ({"expires_at": NOW - timedelta(minutes=5), "name": "x"}, CouponAction.CLOSED),
        ({"expires_at": NOW + timedelta(seconds=1)}, CouponAction.UPDATED),
        ({"total_quantity": 5}, CouponAction.UPDATED),
        ({"name": "x"}, CouponAction.UPDATED),
    ],
)
def test_the_action_of_a_change(new: dict[str, Any], action: CouponAction) -> None:
    assert action_of(new, NOW) is action


def test_phases() -> None:
    start, end = NOW, NOW + timedelta(hours=1)
    assert phase_of(start, end, NOW - timedelta(seconds=1)) is CouponPhase.UPCOMING
    assert phase_of(start, end, NOW) is CouponPhase.LIVE
    assert phase_of(start, end, end - timedelta(microseconds=1)) is CouponPhase.LIVE
    assert phase_of(start, end, end) is CouponPhase.ENDED


# --- the words of each problem (the API's, not pydantic's) ------------------------------------------------------

_ALL = "status, issueStartsAt, expiresAt, totalQuantity, name"


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        ({}, [("body", f"must set at least one of {_ALL}")]),
        ({"type": "PIZZA"}, [("type", "unknown field")]),
        ({"status": None}, [("status", "must not be null")]),
        ({"status": "paused"}, [("status", "must be one of ACTIVE, DISABLED")]),
        ({"issueStartsAt": 5}, [("issueStartsAt", "must be an ISO-8601 date-time string")]),
        (
            {"issueStartsAt": "2026-11-28T00:00:00Z", "expiresAt": "2026-11-28T00:00:00Z"},
            [("expiresAt", "must be after issueStartsAt")],
        ),
        ({"totalQuantity": 0}, [("totalQuantity", "must be between 1 and 10000000")]),
        ({"totalQuantity": 2.0}, [("totalQuantity", "must be an integer")]),
        ({"name": ""}, [("name", "must be 1 to 100 characters long")]),
        ({"name": " \t "}, [("name", "must not be blank")]),
        ({"name": 7}, [("name", "must be a string")]),
        # Nulls come right after unknown fields, before the other fields' problems.
        (
            {"status": "ON", "name": None, "colour": 1},
            [("colour", "unknown field"), ("name", "must not be null"), ("status", "must be one of ACTIVE, DISABLED")],
        ),
    ],
)
def test_the_reasons_of_bad_patches(body: dict[str, Any], problems: list[tuple[str, str]]) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse_coupon_patch(body)
    assert [(p["field"], p["reason"]) for p in exc.value.data] == problems


_BAD_CURSOR = "is not a cursor of this list (pass the nextCursor of the previous page)"


@pytest.mark.parametrize(
    ("parse", "args", "problems"),
    [
        (parse_listing_query, {"limit": "0"}, [("limit", "must be an integer from 1 to 100")]),
        (parse_listing_query, {"limit": "1e2"}, [("limit", "must be an integer from 1 to 100")]),
        (parse_listing_query, {"status": "active"}, [("status", "must be one of ACTIVE, DISABLED")]),
        (parse_listing_query, {"phase": "x"}, [("phase", "must be one of live, upcoming, ended")]),
        (parse_listing_query, {"cursor": ""}, [("cursor", _BAD_CURSOR)]),
        (parse_ledger_query, {"limit": "1001"}, [("limit", "must be an integer from 1 to 1000")]),
        (parse_events_query, {"cursor": "%%"}, [("cursor", _BAD_CURSOR)]),
        (parse_failure_query, {"limit": "501"}, [("limit", "must be an integer from 1 to 500")]),
        (parse_failure_query, {"cursor": "x"}, [("cursor", "unknown field")]),
        (
            parse_failure_query,
            {"status": "LOST", "x": "1"},
            [("x", "unknown field"), ("status", "must be one of PENDING, RESOLVED, DEAD")],
        ),
    ],
)
def test_the_reasons_of_bad_queries(parse: Any, args: dict[str, str], problems: list[tuple[str, str]]) -> None:
    with pytest.raises(ValidationFailed) as exc:
        parse(args)
    assert [(p["field"], p["reason"]) for p in exc.value.data] == problems


def test_the_failure_query() -> None:
    assert parse_failure_query({}) == (None, 50)
    assert parse_failure_query({"status": "DEAD", "limit": "500"}) == ("DEAD", 500)
