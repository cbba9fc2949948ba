#!/usr/bin/env bash
# Creates .venv and installs requirements/dev.txt into it, only when the requirements changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.requirements.sha"
want="$(cat "$ROOT"/requirements/*.txt | sha256sum | cut -d' ' -f1)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  echo "[venv] $VENV is up to date"
  exit 0
fi
if [[ ! -x "$VENV/bin/python" ]]; then
  echo "[venv] creating $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
echo "[venv] installing requirements/dev.txt (first time takes a minute)"
"$VENV/bin/pip" install --disable-pip-version-check -q -r "$ROOT/requirements/dev.txt"
echo "$want" > "$STAMP"
echo "[venv] ready"
