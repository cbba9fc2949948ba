"""Unit tests for coupon.domain.errors: every AppError has a unique, well-formed code, status and message."""

from __future__ import annotations

import inspect
import re

import pytest

from coupon.domain import errors
from coupon.domain.errors import AppError, all_error_classes

# Every concrete error defined in the module, found independently of all_error_classes().
DEFINED = sorted(
    (
        obj
        for obj in vars(errors).values()
        if inspect.isclass(obj) and issubclass(obj, AppError) and obj is not AppError
    ),
    key=lambda c: c.__name__,
)

# code pattern -> allowed statuses
FAMILIES: list[tuple[str, str, set[int]]] = [
    ("auth", r"E1\d{3}", {401, 403}),
    ("user", r"E2\d{3}", set(range(400, 500))),
    ("coupon", r"E3\d{3}", set(range(400, 500))),
    ("validation", r"E4\d{3}", set(range(400, 500))),
    ("rate limit", r"E429", {429}),
    ("dependency", r"E503\d", {503}),
    ("internal", r"E5000", {500}),
]


def family_of(code: str) -> tuple[str, set[int]] | None:
    for name, pattern, statuses in FAMILIES:
        if re.fullmatch(pattern, code):
            return name, statuses
    return None


def test_the_module_defines_errors() -> None:
    assert len(DEFINED) >= 20


def test_all_error_classes_returns_exactly_the_defined_errors() -> None:
    assert sorted(all_error_classes(), key=lambda c: c.__name__) == DEFINED


def test_all_error_classes_has_no_duplicates() -> None:
    classes = all_error_classes()
    assert len(classes) == len(set(classes))


def test_all_error_classes_is_in_code_order() -> None:
    codes = [c.code for c in all_error_classes()]
    assert codes == sorted(codes)


def test_codes_are_unique() -> None:
    codes = [c.code for c in DEFINED]
    duplicates = {code for code in codes if codes.count(code) > 1}
    assert not duplicates


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_error_code_belongs_to_a_family(cls: type[AppError]) -> None:
    assert family_of(cls.code) is not None, f"{cls.__name__} has code {cls.code} outside every family"


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_error_status_matches_its_family(cls: type[AppError]) -> None:
    family = family_of(cls.code)
    assert family is not None
    name, statuses = family
    assert cls.status in statuses, f"{cls.__name__} ({name}) has status {cls.status}"


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_error_status_is_4xx_or_5xx(cls: type[AppError]) -> None:
    assert isinstance(cls.status, int)
    assert 400 <= cls.status <= 599


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_error_has_a_non_empty_default_message(cls: type[AppError]) -> None:
    assert isinstance(cls.message, str)
    assert cls.message.strip()
    instance = cls()
    assert instance.message == cls.message
    assert str(instance) == cls.message
    assert instance.data is None


@pytest.mark.parametrize("cls", DEFINED, ids=lambda c: c.__name__)
def test_error_message_and_data_can_be_overridden_per_instance(cls: type[AppError]) -> None:
    instance = cls("custom text", data={"k": 1})
    assert instance.message == "custom text"
    assert str(instance) == "custom text"
    assert instance.data == {"k": 1}
    assert cls.message != "custom text"  # the class default is untouched


def test_empty_message_falls_back_to_the_default() -> None:
    assert errors.SoldOut("").message == errors.SoldOut.message


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (errors.MissingToken, "E1001"),
        (errors.Forbidden, "E1004"),
        (errors.UsernameTaken, "E2001"),
        (errors.CouponNotFound, "E3001"),
        (errors.SoldOut, "E3003"),
        (errors.ValidationFailed, "E4000"),
        (errors.MalformedJson, "E4001"),
        (errors.RateLimited, "E429"),
        (errors.RedisUnavailable, "E5031"),
        (errors.KafkaUnavailable, "E5032"),
        (errors.DatabaseUnavailable, "E5033"),
    ],
)
def test_errors_sit_in_the_family_their_meaning_implies(cls: type[AppError], code: str) -> None:
    assert cls.code == code
