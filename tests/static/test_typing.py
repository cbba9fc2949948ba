"""mypy, strict, over coupon/ and workers/: the [tool.mypy] settings of pyproject.toml, run as a developer runs them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"


@pytest.mark.slow  # `make check` runs the tool in its lint step
def test_the_mypy_settings_are_strict_over_coupon_and_workers() -> None:
    settings = tomllib.loads(PYPROJECT.read_text())["tool"]["mypy"]
    assert settings["strict"] is True
    assert set(settings["files"]) >= {"coupon", "workers"}


@pytest.mark.slow  # `make check` runs the tool in its lint step
def test_mypy_finds_no_error() -> None:
    # Never a skip: a machine without mypy would pass this test without checking anything.
    if importlib.util.find_spec("mypy") is None:
        pytest.fail(
            f"mypy is not installed for {sys.executable}; install requirements/dev.txt (it pins mypy and the stubs)",
            pytrace=False,
        )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(PYPROJECT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"mypy exited {result.returncode}:\n{result.stdout}{result.stderr}", pytrace=False)
