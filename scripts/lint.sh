#!/usr/bin/env bash
# `make lint`: ruff (lint, import order, format), mypy (strict on coupon/ and workers/), shellcheck (scripts/),
# promtool (the alerting rules and their tests).
# Every tool runs even when an earlier one fails, so one run lists every finding; the exit code is non-zero if any did.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
BIN="$ROOT/.venv/bin"
failed=()

step() {
  local name="$1"
  shift
  echo "[lint] $name"
  local started=$SECONDS
  if "$@"; then
    echo "[lint] $name ok ($((SECONDS - started)) s)"
  else
    echo "[lint] $name FAILED"
    failed+=("$name")
  fi
}

step "ruff check" "$BIN/ruff" check .
step "ruff format" "$BIN/ruff" format --check .
step "mypy" "$BIN/mypy"
step "shellcheck" "$BIN/shellcheck" scripts/*.sh scripts/lib/*.sh .ci/run
# The alerting rules and their unit tests. promtool comes with apt's `prometheus`, installed here when missing (as
# `make lint` creates .venv for the others): a fresh CI machine runs `make lint` first.
promtool_rules() {
  command -v promtool >/dev/null || scripts/prometheus.sh install || return 1
  promtool check rules docker/prometheus/alerts.yml && promtool test rules docker/prometheus/alerts.test.yml
}
step "promtool" promtool_rules

if ((${#failed[@]})); then
  echo "[lint] failed: ${failed[*]} (ruff: \`.venv/bin/ruff check --fix . && .venv/bin/ruff format .\` fixes most)"
  exit 1
fi
echo "[lint] all clean"
