#!/usr/bin/env bash
# `make check`: the loop to run before every commit. Lint, then every test not marked slow, on the same
# parallel workers and real services as `make test` (scripts/test.sh), which are left running for the next
# loop (`make services-down` stops the usual ones; scripts/test.sh's header says how the others run).
# `make test` is the whole suite. Extra arguments go to pytest, e.g. `scripts/check.sh -x -k gate`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

started=$SECONDS
scripts/venv.sh
scripts/lint.sh
echo "[check] tests not marked slow (the whole suite: make test)"
TEST_KEEP_SERVICES=1 scripts/test.sh -m "not slow" -q "$@"
echo "[check] done in $((SECONDS - started)) s"
