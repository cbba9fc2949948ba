"""k6/: the scripts parse (node --check), and `scripts/k6.sh` (make k6) mints, creates a coupon, hands both to
k6 and ends with reconcile's verdict, over a real stack. k6 itself is not installed here; a stand-in plays it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.client import Api
from harness.processes import ROOT, Stack

# Fault injection and end-to-end runs: `make test` runs them, `make check` leaves them out.
pytestmark = pytest.mark.slow

K6_DIR = ROOT / "k6"
SCRIPTS = sorted(K6_DIR.glob("*.js"))

# Plays k6 for the wrapper: reads the -e options it is given and issues one request per token, like flash_sale.js.
STAND_IN = r"""#!/usr/bin/env bash
set -euo pipefail
for arg in "$@"; do case "$arg" in BASE_URL=*|COUPON_ID=*|TOKENS_FILE=*) export "$arg";; esac; done
echo "stand-in k6 $*"
while read -r user token; do
  curl -s -o /dev/null -w '%{http_code}\n' -X POST "$BASE_URL/api/coupon/$COUPON_ID/issue" \
    -H "Authorization: Bearer $token"
done < "$TOKENS_FILE" | sort | uniq -c
exit "${STAND_IN_RC:-0}"
"""


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_k6_scripts_are_valid_javascript_modules(script: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the syntax check needs it (apt-get install nodejs)")
    out = subprocess.run([node, "--check", "--input-type=module"], stdin=script.open(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_k6_scenarios_are_what_the_readme_promises() -> None:
    flash = (K6_DIR / "flash_sale.js").read_text()
    assert "per-vu-iterations" in flash and "iterations: 1" in flash and "users[__VU - 1]" in flash
    assert "http_req_failed" in flash and "p(95)<" in flash
    lib = (K6_DIR / "lib.js").read_text()
    for status in ("202", "409", "503"):
        assert status in lib
    ramping = (K6_DIR / "ramping.js").read_text()
    assert "ramping-vus" in ramping and "60s:10000" in ramping  # up to 10,000 VUs by default
    assert "/usage" in (K6_DIR / "usage.js").read_text()


def _wrapper(env: dict[str, str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    run_env = dict(
        env, FLASK=str(Path(sys.executable).parent / "flask"), K6_OUT_DIR=str(tmp_path / "k6"), K6_DRAIN_TIMEOUT="60"
    )
    run_env.update(extra)
    return subprocess.run(
        [str(ROOT / "scripts" / "k6.sh")], cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=300
    )


def _tokens_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "k6").glob("tokens-*.txt"))


def test_wrapper_runs_a_sale_through_k6_and_reconciles(stack: Stack, api: Api, tmp_path: Path) -> None:
    k6 = tmp_path / "k6-stand-in"
    k6.write_text(STAND_IN)
    k6.chmod(0o755)
    out = _wrapper(stack.env, tmp_path, BASE_URL=api.base, K6=str(k6), K6_USERS="30", K6_QUANTITY="20")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "stand-in k6 run" in out.stdout and "k6/flash_sale.js" in out.stdout
    assert re.search(r"20 202\b", out.stdout) and re.search(r"10 409\b", out.stdout), out.stdout
    assert "issued_rows          20" in out.stdout and "VERDICT: OK" in out.stderr
    tokens = _tokens_files(tmp_path)[0]
    assert len(tokens.read_text().splitlines()) == 30 and oct(tokens.stat().st_mode)[-3:] == "600"

    failing = _wrapper(
        stack.env, tmp_path, BASE_URL=api.base, K6=str(k6), K6_USERS="5", K6_QUANTITY="5", STAND_IN_RC="99"
    )
    assert failing.returncode == 99 and "k6 reported failed thresholds" in failing.stderr


def test_without_k6_mint_and_reconcile_still_decide_the_verdict(
    stack: Stack, api: Api, admin_token, tmp_path: Path, rdb
) -> None:
    env = dict(
        stack.env, PATH=os.pathsep.join(p for p in stack.env["PATH"].split(os.pathsep) if not (Path(p) / "k6").exists())
    )
    absent = _wrapper(env, tmp_path, BASE_URL=api.base, K6_USERS="10", K6_QUANTITY="5")
    assert absent.returncode == 0, absent.stderr
    assert "k6 is not installed" in absent.stderr and "VERDICT: OK" in absent.stderr
    assert len(_tokens_files(tmp_path)) == 1

    from coupon.adapters import keys

    coupon = api.create_coupon(admin_token, 5)
    rdb.incr(keys.issued(coupon["id"]))  # a reservation no request holds: reconcile must say so
    leaked = _wrapper(
        env, tmp_path, BASE_URL=api.base, K6="skip", K6_USERS="3", COUPON_ID=coupon["id"], K6_DRAIN_TIMEOUT="2"
    )
    assert leaked.returncode == 1, leaked.stderr
    assert "MISMATCH: Redis reserved 1" in leaked.stderr and "VERDICT: MISMATCH" in leaked.stderr

    down = _wrapper(env, tmp_path, BASE_URL="http://127.0.0.1:9", K6="skip")
    assert down.returncode == 2 and "make run" in down.stderr
