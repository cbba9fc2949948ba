#!/usr/bin/env bash
# Creates .venv and installs requirements/dev.txt into it (with uv, else pip), only when the requirements changed.
# dev.txt (and base.txt) are compiled by `make pins` from the .in files: every package pinned, with hashes,
# so the install runs hash-checked (--require-hashes, with uv or pip) and gets exactly those files.
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
# uv (pinned and hashed in requirements/uv.txt) installs the same hash-checked files in seconds; pip took about a
# minute of CPU, on every fresh clone's `make test`. Where uv can't be had (no wheel for this platform, no index
# it can reach), pip does it, as before. VENV_INSTALLER=pip chooses pip. --compile-bytecode, as pip does by default:
# where PYTHONDONTWRITEBYTECODE is set (this machine sets it) nothing is cached on import, and every process of the
# suite compiled its imports again (3.2 CPU-s to import the app instead of 1.1; pytest took 932 s instead of ~560).
installed=""
if [[ "${VENV_INSTALLER:-uv}" == uv ]]; then
  if [[ -x "$VENV/bin/uv" ]] ||
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q --require-hashes -r "$ROOT/requirements/uv.txt"; then
    echo "[venv] installing requirements/dev.txt with uv: $count pinned packages, hash-checked"
    if "$VENV/bin/uv" pip install --python "$VENV/bin/python" --quiet --compile-bytecode --require-hashes -r "$REQS"; then
      installed=uv
    else
      echo "[venv] uv failed; installing with pip instead" >&2
    fi
  else
    echo "[venv] could not install uv; installing with pip instead" >&2
  fi
fi
if [[ -z "$installed" ]]; then
  echo "[venv] installing requirements/dev.txt with pip: $count pinned packages, hash-checked (takes a minute)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q --require-hashes -r "$REQS"
fi
echo "[venv] checking dependencies (pip check)"
if ! check="$("$VENV/bin/python" -m pip check --disable-pip-version-check 2>&1)"; then
  echo "$check" >&2
  echo "[venv] pip check failed: requirements/*.txt are inconsistent; recompile them with make pins" >&2
  exit 1
fi
echo "$want" > "$STAMP"
echo "[venv] ready"
