"""docs/CONFIGURATION.md's settings table is the Settings class: every field, its default, bounds and meaning."""

from __future__ import annotations

import re

import pytest

from coupon.settings import Settings
from coupon.settings_doc import BEGIN, DOC, END, bounds_of, documented, row, table

TEXT = DOC.read_text()
FIX = "run `make config-doc` (python -m coupon.settings_doc --write) and commit docs/CONFIGURATION.md"


def _rows() -> dict[str, str]:
    return {m.group(1): m.group(0) for m in re.finditer(r"^\| `([A-Z0-9_]+)` \|.*$", documented(TEXT), re.M)}


def test_the_table_sits_between_its_markers_once() -> None:
    assert TEXT.count(BEGIN) == 1 and TEXT.count(END) == 1, "the settings table's markers are missing or doubled"


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_each_field_has_its_row(name: str) -> None:
    found = _rows().get(name.upper())
    assert found is not None, f"{name.upper()} is not in docs/CONFIGURATION.md: {FIX}"
    assert found == row(name), f"{name.upper()}'s row drifted from coupon/settings.py: {FIX}"


def test_the_table_names_no_setting_the_class_lacks() -> None:
    extra = set(_rows()) - {name.upper() for name in Settings.model_fields}
    assert not extra, f"documented but not settings: {sorted(extra)}: {FIX}"


def test_the_generated_table_is_the_documented_one() -> None:
    assert documented(TEXT) == table(), FIX


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_field_is_described_and_bounded(name: str) -> None:
    field = Settings.model_fields[name]
    assert field.description, f"{name} has no description"
    assert bounds_of(name), f"{name} has no bounds: ge/le, a Literal, or a pattern or check named in doc_bounds"
    if "doc_bounds" in (field.json_schema_extra or {}):  # type: ignore[operator]
        checked = any(getattr(m, "pattern", None) or getattr(m, "max_length", None) for m in field.metadata)
        assert checked or name == "trusted_proxies", f"{name} names bounds in words but checks none"
