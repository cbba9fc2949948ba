"""The suite's longest-first order and its units of scheduling (tests.support.scheduling)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import scheduling


@dataclass
class FakeItem:
    nodeid: str


@pytest.fixture
def table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "durations.json"
    monkeypatch.setattr(scheduling, "DURATIONS", path)
    return path


def test_measured_tests_go_longest_first_and_the_rest_keep_their_order(table: Path) -> None:
    table.write_text(json.dumps({"tests/a.py::slow": 30.0, "tests/b.py::slower": 60.0}))
    items = [FakeItem(n) for n in ("tests/a.py::quick", "tests/a.py::slow", "tests/b.py::x", "tests/b.py::slower")]
    scheduling.longest_first(items)  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == ["tests/b.py::slower", "tests/a.py::slow", "tests/a.py::quick", "tests/b.py::x"]


def test_a_serial_module_stays_together_weighted_by_its_sum(table: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scheduling, "SERIAL_MODULES", frozenset({"tests/s.py"}))
    table.write_text(json.dumps({"tests/s.py::one": 20.0, "tests/s.py::two": 25.0, "tests/a.py::long": 40.0}))
    items = [FakeItem(n) for n in ("tests/a.py::long", "tests/s.py::one", "tests/x.py::t", "tests/s.py::two")]
    scheduling.longest_first(items)  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == ["tests/s.py::one", "tests/s.py::two", "tests/a.py::long", "tests/x.py::t"]
    assert scheduling.unit_of("tests/s.py::one") == scheduling.unit_of("tests/s.py::two") == "tests/s.py"
    assert scheduling.unit_of("tests/a.py::long") == "tests/a.py::long"


def test_a_missing_or_broken_table_leaves_the_collection_order(table: Path) -> None:
    items = [FakeItem(n) for n in ("tests/b.py::z", "tests/a.py::y")]
    scheduling.longest_first(items)  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == ["tests/b.py::z", "tests/a.py::y"]
    table.write_text("{not json")
    scheduling.longest_first(items)  # type: ignore[arg-type]
    assert [i.nodeid for i in items] == ["tests/b.py::z", "tests/a.py::y"]


def test_the_table_is_rebuilt_from_junit_xml_keeping_only_the_slow_tests(table: Path, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.integration.test_x" name="test_slow[cluster]" time="12.34"/>'
        '<testcase classname="tests.unit.test_y.TestGroup" name="test_method" time="3.0"/>'
        '<testcase classname="tests.unit.test_y" name="test_quick" time="0.5"/>'
        "</testsuite></testsuites>"
    )
    assert scheduling.update(junit) == {
        "tests/integration/test_x.py::test_slow[cluster]": 12.3,
        "tests/unit/test_y.py::TestGroup::test_method": 3.0,
    }
    assert json.loads(table.read_text()) == scheduling.update(junit)
