#!/usr/bin/env bash
# `make k6`: a k6 load run against a running stack (`make run`) that ends with a verdict.
#   1. mints K6_USERS users and writes their tokens to a file (flask mint-users)
#   2. creates a coupon of K6_QUANTITY units (or uses COUPON_ID)
#   3. runs k6/$K6_SCRIPT.js if k6 is installed (K6=skip leaves it out)
#   4. waits for the consumers to drain, then runs `flask reconcile`: its verdict is the exit code
# Exit: 0 = reconciled and k6's thresholds held; 1 = Redis and the DB disagree; k6's code if a threshold failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

K6_SCRIPT="${K6_SCRIPT:-flash_sale}"          # flash_sale | ramping | usage
K6_USERS="${K6_USERS:-1000}"
K6_QUANTITY="${K6_QUANTITY:-100}"
K6="${K6:-k6}"                                 # path of k6, or `skip`
K6_DRAIN_TIMEOUT="${K6_DRAIN_TIMEOUT:-60}"     # seconds to wait for the consumers to catch up
BASE_URL="${BASE_URL:-http://127.0.0.1:${API_PORT:-8000}}"
OUT_DIR="${K6_OUT_DIR:-$ROOT/.local/k6}"
FLASK="${FLASK:-$ROOT/.venv/bin/flask}"
export FLASK_APP=wsgi

say() { echo "[k6] $*" >&2; }

if [[ ! -f "k6/$K6_SCRIPT.js" ]]; then
  say "no script k6/$K6_SCRIPT.js (choose flash_sale, ramping or usage)"; exit 2
fi
if [[ ! -x "$FLASK" ]]; then
  say "no $FLASK: run \`make venv\` (or \`make run\`) first"; exit 2
fi
if ! curl -fsS "$BASE_URL/health" >/dev/null 2>&1; then
  say "the API does not answer at $BASE_URL/health: start the stack with \`make run\` (or set BASE_URL)"; exit 2
fi

mkdir -p "$OUT_DIR"
TOKENS="$OUT_DIR/tokens-$(date -u +%Y%m%dT%H%M%SZ)-$$.txt"
umask 077  # the file holds valid access tokens
say "minting $K6_USERS users → $TOKENS"
"$FLASK" mint-users "$K6_USERS" --out "$TOKENS"

if [[ -z "${COUPON_ID:-}" ]]; then
  COUPON_ID="$("$FLASK" create-coupon --name "k6 $K6_SCRIPT $(date -u +%H:%M:%S)" --type GENERAL \
    --quantity "$K6_QUANTITY" --hours 2)"
  say "coupon $COUPON_ID: $K6_QUANTITY units"
else
  say "using coupon $COUPON_ID"
fi

k6_rc=0
if [[ "$K6" == "skip" ]]; then
  say "K6=skip: no load run; reconciling what is there"
elif command -v "$K6" >/dev/null 2>&1; then
  say "running $K6 run k6/$K6_SCRIPT.js against $BASE_URL"
  set +e
  "$K6" run -e BASE_URL="$BASE_URL" -e COUPON_ID="$COUPON_ID" -e TOKENS_FILE="$TOKENS" "k6/$K6_SCRIPT.js"
  k6_rc=$?
  set -e
else
  say "k6 is not installed, so no load was generated (mint + reconcile still run)."
  say "k6 is not packaged in Debian or PyPI; install it from https://grafana.com/docs/k6/latest/set-up/install-k6/"
  say "(e.g. Grafana's apt repository: apt-get install k6), then run \`make k6\` again."
fi

say "reconciling, waiting up to ${K6_DRAIN_TIMEOUT}s for the consumers to drain"
set +e
"$FLASK" reconcile "$COUPON_ID" --wait "$K6_DRAIN_TIMEOUT"
reconcile_rc=$?
set -e

if (( reconcile_rc != 0 )); then
  say "VERDICT: MISMATCH: Redis and the DB disagree for coupon $COUPON_ID (see above)"; exit 1
fi
if (( k6_rc != 0 )); then
  say "VERDICT: reconciled, but k6 reported failed thresholds (exit $k6_rc)"; exit "$k6_rc"
fi
say "VERDICT: OK: coupon $COUPON_ID reconciled"
