"""Unit tests for coupon.http.parsing and the body models behind it: credentials, coupon drafts, UUIDs and
JSON-object checks; each validation rule is tested here, once."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from coupon.domain.commands import CouponDraft, Credentials
from coupon.domain.errors import InvalidId, MalformedJson, ValidationFailed
from coupon.domain.vocabulary import CouponType, DiscountType
from coupon.http.parsing import (
    parse_coupon_draft,
    parse_credentials,
    parse_uuid,
    require_object,
)
from coupon.http.schemas.fields import MAX_FIXED_DISCOUNT, MAX_QUANTITY

NOW = datetime(2026, 11, 1, 12, 0, 0)  # naive UTC, as the callers pass it
_DROP = object()  # marks a field to leave out of the body


def problems(exc_info: pytest.ExceptionInfo[ValidationFailed]) -> list[dict[str, str]]:
    return exc_info.value.data


def fields_of(exc_info: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [p["field"] for p in problems(exc_info)]


def reasons_for(exc_info: pytest.ExceptionInfo[ValidationFailed], field: str) -> list[str]:
    return [p["reason"] for p in problems(exc_info) if p["field"] == field]


def draft_body(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "Friday pizza",
        "type": "PIZZA",
        "discountType": "FIXED",
        "discountValue": 3000,
        "totalQuantity": 500,
        "issueStartsAt": "2026-11-27T09:00:00Z",
        "expiresAt": "2026-11-30T09:00:00Z",
    }
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def draft_error(**changes: object) -> pytest.ExceptionInfo[ValidationFailed]:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_coupon_draft(draft_body(**changes), NOW)
    return exc_info


# --- require_object ------------------------------------------------------------------------------


def test_require_object_returns_the_same_dict() -> None:
    body = {"a": 1}
    assert require_object(body) is body


@pytest.mark.parametrize("body", [None, [], [{"a": 1}], "text", 42, 1.5, True])
def test_require_object_rejects_anything_but_a_dict(body: object) -> None:
    with pytest.raises(MalformedJson):
        require_object(body)


# --- parse_uuid ----------------------------------------------------------------------------------


def test_parse_uuid_returns_canonical_lowercase_form() -> None:
    value = uuid.uuid4()
    assert parse_uuid(str(value).upper()) == str(value)


def test_parse_uuid_accepts_hex_without_hyphens() -> None:
    value = uuid.uuid4()
    assert parse_uuid(value.hex) == str(value)


@pytest.mark.parametrize("value", ["", "not-a-uuid", "1234", "g" * 32, "3f2b8c1e-9a4d-4e6f-8b7a-2c5d9e0f1a3b" + "0"])
def test_parse_uuid_rejects_malformed_strings_and_echoes_them(value: str) -> None:
    with pytest.raises(InvalidId) as exc_info:
        parse_uuid(value)
    assert exc_info.value.data == {"id": value}


def test_parse_uuid_truncates_a_long_bad_value_in_the_error() -> None:
    with pytest.raises(InvalidId) as exc_info:
        parse_uuid("x" * 500)
    assert exc_info.value.data == {"id": "x" * 64}


@pytest.mark.parametrize("value", [None, 123, 1.5, ["a"], {"id": "x"}, b"00000000000000000000000000000000"])
def test_parse_uuid_rejects_non_strings_without_echoing_them(value: object) -> None:
    with pytest.raises(InvalidId) as exc_info:
        parse_uuid(value)  # type: ignore[arg-type]
    assert exc_info.value.data == {"id": None}


# --- parse_credentials ---------------------------------------------------------------------------


@pytest.mark.parametrize("for_signup", [True, False])
def test_credentials_valid_body_is_returned_unchanged(for_signup: bool) -> None:
    creds = parse_credentials({"username": "alice_01", "password": "s3cret-pass"}, for_signup=for_signup)
    assert creds == Credentials(username="alice_01", password="s3cret-pass")


@pytest.mark.parametrize("for_signup", [True, False])
def test_credentials_body_must_be_an_object(for_signup: bool) -> None:
    with pytest.raises(MalformedJson):
        parse_credentials(["alice", "password"], for_signup=for_signup)


@pytest.mark.parametrize("for_signup", [True, False])
def test_credentials_missing_both_fields_reports_both(for_signup: bool) -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({}, for_signup=for_signup)
    assert problems(exc_info) == [
        {"field": "username", "reason": "is required"},
        {"field": "password", "reason": "is required"},
    ]


@pytest.mark.parametrize("for_signup", [True, False])
def test_credentials_null_fields_count_as_missing(for_signup: bool) -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({"username": None, "password": None}, for_signup=for_signup)
    assert problems(exc_info) == [
        {"field": "username", "reason": "is required"},
        {"field": "password", "reason": "is required"},
    ]


@pytest.mark.parametrize("for_signup", [True, False])
@pytest.mark.parametrize("bad", [123, True, ["alice"], {"u": 1}])
def test_credentials_non_string_values_are_rejected(for_signup: bool, bad: object) -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({"username": bad, "password": bad}, for_signup=for_signup)
    assert reasons_for(exc_info, "username") == ["must be a string"]
    assert reasons_for(exc_info, "password") == ["must be a string"]


@pytest.mark.parametrize("for_signup", [True, False])
def test_credentials_unknown_field_is_reported(for_signup: bool) -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({"username": "alice", "password": "password1", "role": "ADMIN"}, for_signup=for_signup)
    assert problems(exc_info) == [{"field": "role", "reason": "unknown field"}]


@pytest.mark.parametrize(
    ("username", "password", "bad_field"),
    [
        ("ab", "password1", "username"),  # signup needs 3+ characters
        ("a" * 51, "password1", "username"),
        ("alice", "short12", "password"),  # signup needs 8+ characters
        ("alice", "p" * 129, "password"),
        ("", "password1", "username"),
    ],
)
def test_signup_length_rules(username: str, password: str, bad_field: str) -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({"username": username, "password": password}, for_signup=True)
    assert fields_of(exc_info) == [bad_field]
    assert "characters long" in reasons_for(exc_info, bad_field)[0]


def test_signup_accepts_the_length_boundaries() -> None:
    creds = parse_credentials({"username": "abc", "password": "12345678"}, for_signup=True)
    assert creds == Credentials("abc", "12345678")
    creds = parse_credentials({"username": "a" * 50, "password": "p" * 128}, for_signup=True)
    assert creds == Credentials("a" * 50, "p" * 128)


@pytest.mark.parametrize("username", ["al ice", "alice!", "ali@ce", "élodie", "bob/1", "abcd\n"])
def test_signup_rejects_usernames_with_forbidden_characters(username: str) -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({"username": username, "password": "password1"}, for_signup=True)
    assert fields_of(exc_info) == ["username"]
    assert "may only contain" in reasons_for(exc_info, "username")[0]


@pytest.mark.parametrize("username", ["a.b", "a_b", "a-b", "ABC123"])
def test_signup_accepts_allowed_username_characters(username: str) -> None:
    assert parse_credentials({"username": username, "password": "password1"}, for_signup=True).username == username


@pytest.mark.parametrize(
    ("username", "password"),
    [("a", "p"), ("al ice!", "x"), ("ab", "short")],
)
def test_login_is_lenient_about_length_and_characters(username: str, password: str) -> None:
    assert parse_credentials({"username": username, "password": password}, for_signup=False) == Credentials(
        username, password
    )


@pytest.mark.parametrize(("username", "password", "bad_field"), [("", "x", "username"), ("a", "", "password")])
def test_login_still_rejects_empty_strings(username: str, password: str, bad_field: str) -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({"username": username, "password": password}, for_signup=False)
    assert fields_of(exc_info) == [bad_field]


def test_login_still_enforces_maximum_lengths() -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({"username": "u" * 51, "password": "p" * 129}, for_signup=False)
    assert fields_of(exc_info) == ["username", "password"]


# --- parse_coupon_draft: the happy path -----------------------------------------------------------


def test_draft_valid_body_becomes_a_typed_draft() -> None:
    draft = parse_coupon_draft(draft_body(), NOW)
    assert draft == CouponDraft(
        name="Friday pizza",
        type=CouponType.PIZZA,
        discount_type=DiscountType.FIXED,
        discount_value=Decimal("3000"),
        total_quantity=500,
        issue_starts_at=datetime(2026, 11, 27, 9, 0),
        expires_at=datetime(2026, 11, 30, 9, 0),
    )


def test_draft_without_start_opens_now() -> None:
    draft = parse_coupon_draft(draft_body(issueStartsAt=_DROP), NOW)
    assert draft.issue_starts_at == NOW


def test_draft_with_null_start_opens_now() -> None:
    draft = parse_coupon_draft(draft_body(issueStartsAt=None), NOW)
    assert draft.issue_starts_at == NOW


def test_draft_name_is_stripped() -> None:
    assert parse_coupon_draft(draft_body(name="  Pizza  "), NOW).name == "Pizza"


@pytest.mark.parametrize("ctype", list(CouponType))
def test_draft_accepts_every_coupon_type(ctype: CouponType) -> None:
    assert parse_coupon_draft(draft_body(type=ctype.value), NOW).type is ctype


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, Decimal("1")), (0.01, Decimal("0.01")), (12.5, Decimal("12.5")), (99.99, Decimal("99.99"))],
)
def test_draft_discount_value_becomes_an_exact_decimal(value: float, expected: Decimal) -> None:
    assert parse_coupon_draft(draft_body(discountValue=value), NOW).discount_value == expected


def test_draft_percentage_of_exactly_100_is_allowed() -> None:
    draft = parse_coupon_draft(draft_body(discountType="PERCENTAGE", discountValue=100), NOW)
    assert draft.discount_type is DiscountType.PERCENTAGE
    assert draft.discount_value == Decimal("100")


def test_draft_fixed_discount_at_the_maximum_is_allowed() -> None:
    draft = parse_coupon_draft(draft_body(discountValue=int(MAX_FIXED_DISCOUNT)), NOW)
    assert draft.discount_value == MAX_FIXED_DISCOUNT


@pytest.mark.parametrize("quantity", [1, MAX_QUANTITY])
def test_draft_quantity_bounds_are_inclusive(quantity: int) -> None:
    assert parse_coupon_draft(draft_body(totalQuantity=quantity), NOW).total_quantity == quantity


# --- parse_coupon_draft: one rule per case --------------------------------------------------------


def test_draft_body_must_be_an_object() -> None:
    with pytest.raises(MalformedJson):
        parse_coupon_draft([draft_body()], NOW)


@pytest.mark.parametrize("field", ["name", "type", "discountType", "discountValue", "totalQuantity", "expiresAt"])
def test_draft_missing_required_field(field: str) -> None:
    exc_info = draft_error(**{field: _DROP})
    assert problems(exc_info) == [{"field": field, "reason": "is required"}]


@pytest.mark.parametrize("field", ["name", "type", "discountType", "discountValue", "totalQuantity", "expiresAt"])
def test_draft_null_required_field_counts_as_missing(field: str) -> None:
    exc_info = draft_error(**{field: None})
    assert problems(exc_info) == [{"field": field, "reason": "is required"}]


@pytest.mark.parametrize(
    ("field", "value", "reason_part"),
    [
        ("name", 5, "must be a string"),
        ("name", ["a"], "must be a string"),
        ("type", 1, "must be one of"),
        ("type", ["PIZZA"], "must be one of"),
        ("discountType", True, "must be one of"),
        ("discountValue", "10", "must be a number"),
        ("discountValue", True, "must be a number"),
        ("discountValue", False, "must be a number"),
        ("discountValue", [10], "must be a number"),
        ("totalQuantity", "10", "must be an integer"),
        ("totalQuantity", 10.0, "must be an integer"),
        ("totalQuantity", 10.5, "must be an integer"),
        ("totalQuantity", True, "must be an integer"),
        ("totalQuantity", 1e30, "must be an integer"),  # what JSON's 10**30 parses to
        ("expiresAt", 1764493200, "ISO-8601"),
        ("issueStartsAt", 1764493200, "ISO-8601"),
    ],
)
def test_draft_wrong_types(field: str, value: object, reason_part: str) -> None:
    exc_info = draft_error(**{field: value})
    assert fields_of(exc_info) == [field]
    assert reason_part in reasons_for(exc_info, field)[0]


@pytest.mark.parametrize(("field", "value"), [("type", "SUSHI"), ("type", "pizza"), ("discountType", "BOGO")])
def test_draft_unknown_enum_value_lists_the_allowed_ones(field: str, value: str) -> None:
    exc_info = draft_error(**{field: value})
    [reason] = reasons_for(exc_info, field)
    enum_cls = CouponType if field == "type" else DiscountType
    for member in enum_cls:
        assert member.value in reason


@pytest.mark.parametrize("quantity", [0, -1, MAX_QUANTITY + 1])
def test_draft_quantity_out_of_bounds(quantity: int) -> None:
    exc_info = draft_error(totalQuantity=quantity)
    assert reasons_for(exc_info, "totalQuantity") == [f"must be between 1 and {MAX_QUANTITY}"]


@pytest.mark.parametrize("value", [100.01, 101, 1000])
def test_draft_percentage_over_100_is_rejected(value: float) -> None:
    exc_info = draft_error(discountType="PERCENTAGE", discountValue=value)
    assert reasons_for(exc_info, "discountValue") == ["a percentage must not exceed 100"]


def test_draft_fixed_discount_over_100_is_fine() -> None:
    assert parse_coupon_draft(draft_body(discountType="FIXED", discountValue=101), NOW).discount_value == 101


@pytest.mark.parametrize("value", [0, 0.0, -1, -0.01, -1000])
def test_draft_non_positive_discount_is_rejected(value: float) -> None:
    exc_info = draft_error(discountValue=value)
    assert reasons_for(exc_info, "discountValue") == ["must be greater than 0"]


@pytest.mark.parametrize("value", [0.001, 1.999, 10.125, 0.1 + 0.2])
def test_draft_discount_with_more_than_two_decimals_is_rejected(value: float) -> None:
    exc_info = draft_error(discountValue=value)
    assert reasons_for(exc_info, "discountValue") == ["may have at most two decimals"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_draft_non_finite_discount_is_rejected(value: float) -> None:
    exc_info = draft_error(discountValue=value)
    assert reasons_for(exc_info, "discountValue") == ["must be a finite number"]


@pytest.mark.parametrize("value", [int(MAX_FIXED_DISCOUNT) + 1, 10**20, 1e20])
def test_draft_fixed_discount_above_the_maximum_is_rejected(value: float) -> None:
    exc_info = draft_error(discountValue=value)
    assert reasons_for(exc_info, "discountValue") == [f"must not exceed {MAX_FIXED_DISCOUNT}"]


@pytest.mark.parametrize("value", [10**26, 1e30])
def test_draft_huge_discount_is_a_validation_error_not_a_crash(value: float) -> None:
    exc_info = draft_error(discountValue=value)
    assert fields_of(exc_info) == ["discountValue"]


@pytest.mark.parametrize("value", ["2026-10-31T12:00:00Z", "2026-11-01T12:00:00Z", "2020-01-01T00:00:00"])
def test_draft_expiry_not_in_the_future_is_rejected(value: str) -> None:
    exc_info = draft_error(expiresAt=value, issueStartsAt=_DROP)
    assert problems(exc_info) == [{"field": "expiresAt", "reason": "must be in the future"}]


@pytest.mark.parametrize("starts", ["2026-11-30T09:00:00Z", "2026-12-01T00:00:00Z"])
def test_draft_window_must_end_after_it_starts(starts: str) -> None:
    exc_info = draft_error(issueStartsAt=starts, expiresAt="2026-11-30T09:00:00Z")
    assert problems(exc_info) == [{"field": "expiresAt", "reason": "must be after issueStartsAt"}]


def test_draft_start_in_the_past_is_kept_as_given() -> None:
    draft = parse_coupon_draft(draft_body(issueStartsAt="2026-01-01T00:00:00Z"), NOW)
    assert draft.issue_starts_at == datetime(2026, 1, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T09:00:00Z", datetime(2026, 11, 30, 9, 0)),
        ("2026-11-30T09:00:00z", datetime(2026, 11, 30, 9, 0)),
        ("2026-11-30T09:00:00+00:00", datetime(2026, 11, 30, 9, 0)),
        ("2026-11-30T18:00:00+09:00", datetime(2026, 11, 30, 9, 0)),
        ("2026-11-30T04:00:00-05:00", datetime(2026, 11, 30, 9, 0)),
        ("2026-11-30T09:00:00", datetime(2026, 11, 30, 9, 0)),  # naive means UTC
        ("2026-11-30T09:00:00.250Z", datetime(2026, 11, 30, 9, 0, 0, 250000)),
        ("2026-12-01T02:30:00+05:30", datetime(2026, 11, 30, 21, 0)),  # offset crosses midnight
        ("  2026-11-30T09:00:00Z  ", datetime(2026, 11, 30, 9, 0)),
    ],
)
def test_draft_dates_are_normalised_to_naive_utc(text: str, expected: datetime) -> None:
    draft = parse_coupon_draft(draft_body(issueStartsAt=_DROP, expiresAt=text), NOW)
    assert draft.expires_at == expected
    assert draft.expires_at.tzinfo is None


@pytest.mark.parametrize(
    "text",
    ["", "tomorrow", "2026-13-01T00:00:00Z", "2026-11-31T00:00:00Z", "30/11/2026", "2026-11-30T25:00:00Z"],
)
def test_draft_unparseable_dates_are_rejected(text: str) -> None:
    exc_info = draft_error(expiresAt=text)
    assert fields_of(exc_info) == ["expiresAt"]
    assert "ISO-8601" in reasons_for(exc_info, "expiresAt")[0]


def test_draft_overlong_date_string_is_rejected() -> None:
    exc_info = draft_error(expiresAt="2026-11-30T09:00:00" + " " * 30 + "Z")
    assert fields_of(exc_info) == ["expiresAt"]


@pytest.mark.parametrize("text", ["3000-01-01T00:00:00Z", "1999-12-31T23:59:59Z"])
def test_draft_dates_outside_the_supported_years_are_rejected(text: str) -> None:
    exc_info = draft_error(issueStartsAt=_DROP, expiresAt=text)
    assert reasons_for(exc_info, "expiresAt") == ["must be a date between the years 2000 and 2999"]


@pytest.mark.parametrize("text", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"])
def test_draft_offset_dates_at_the_calendar_edge_are_a_validation_error(text: str) -> None:
    exc_info = draft_error(issueStartsAt=_DROP, expiresAt=text)
    assert fields_of(exc_info) == ["expiresAt"]


def test_draft_unknown_fields_are_reported_by_name() -> None:
    exc_info = draft_error(issuedCount=0, status="ACTIVE")
    assert problems(exc_info) == [
        {"field": "issuedCount", "reason": "unknown field"},
        {"field": "status", "reason": "unknown field"},
    ]


def test_draft_unknown_field_name_is_truncated() -> None:
    exc_info = draft_error(**{"k" * 200: 1})
    assert fields_of(exc_info) == ["k" * 64]


@pytest.mark.parametrize("name", ["   ", "\t\n"])
def test_draft_blank_name_is_rejected(name: str) -> None:
    exc_info = draft_error(name=name)
    assert problems(exc_info) == [{"field": "name", "reason": "must not be blank"}]


@pytest.mark.parametrize("name", ["", "n" * 101])
def test_draft_name_length_is_bounded(name: str) -> None:
    exc_info = draft_error(name=name)
    assert reasons_for(exc_info, "name") == ["must be 1 to 100 characters long"]


def test_draft_reports_every_problem_together() -> None:
    body = {
        "name": "  ",
        "type": "SUSHI",
        "discountType": "PERCENTAGE",
        "discountValue": 150,
        "totalQuantity": 0,
        "issueStartsAt": "not a date",
        "expiresAt": "2020-01-01T00:00:00Z",
        "extra": True,
    }
    with pytest.raises(ValidationFailed) as exc_info:
        parse_coupon_draft(body, NOW)
    assert sorted(fields_of(exc_info)) == sorted(
        ["extra", "name", "type", "discountValue", "totalQuantity", "issueStartsAt", "expiresAt"]
    )
    message = str(exc_info.value)
    for field in fields_of(exc_info):
        assert field in message
    assert exc_info.value.code == "E4000"
    assert exc_info.value.status == 400


def test_draft_missing_everything_reports_each_required_field() -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_coupon_draft({}, NOW)
    assert problems(exc_info) == [
        {"field": f, "reason": "is required"}
        for f in ["name", "type", "discountType", "discountValue", "totalQuantity", "expiresAt"]
    ]


def test_draft_expiry_just_after_now_is_accepted() -> None:
    expires = NOW + timedelta(seconds=1)
    draft = parse_coupon_draft(draft_body(issueStartsAt=_DROP, expiresAt=expires.isoformat()), NOW)
    assert draft.expires_at == expires


def test_an_unknown_field_is_unknown_even_when_null() -> None:
    exc_info = draft_error(extra=None)
    assert problems(exc_info) == [{"field": "extra", "reason": "unknown field"}]


def test_signup_judges_a_names_characters_after_every_size() -> None:
    with pytest.raises(ValidationFailed) as exc_info:
        parse_credentials({"username": "a b", "password": "short"}, for_signup=True)
    assert fields_of(exc_info) == ["password", "username"]


def test_a_python_field_name_on_the_wire_is_unknown() -> None:
    exc_info = draft_error(discount_value=5)
    assert problems(exc_info) == [{"field": "discount_value", "reason": "unknown field"}]
