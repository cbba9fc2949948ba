#!/usr/bin/env bash
# Creates .venv and installs requirements/dev.txt into it, only when the requirements changed.
# dev.txt (and base.txt) are compiled by `make pins` from the .in files: every package pinned, with hashes,
# so the install runs in pip's hash-checking mode (--require-hashes) and gets exactly those files.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha"
REQS="$ROOT/requirements/dev.txt"
want="$(cat "$ROOT"/requirements/*.txt | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "[venv] $VENV is up to date"
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[venv] creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
count="$(grep -cE '^[A-Za-z0-9]' "$REQS")"
echo "[venv] installing requirements/dev.txt: $count pinned packages, hash-checked (first time takes a minute)"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q --require-hashes -r "$REQS"
echo "[venv] checking dependencies (pip check)"
if ! check="$("$VENV/bin/python" -m pip check --disable-pip-version-check 2>&1)"; then
  echo "$check" >&2
  echo "[venv] pip check failed: requirements/*.txt are inconsistent; recompile them with make pins" >&2
  exit 1
fi
echo "$want" > "$STAMP"
echo "[venv] ready"
