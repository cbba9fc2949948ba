#!/usr/bin/env bash
# `make check`: the loop to run before every commit. Lint, then every test not marked slow, against the real
# services (started if they are down, and left running for the next loop: `make services-down` stops them).
# `make test` is the whole suite. Extra arguments go to pytest, e.g. `scripts/check.sh -x -k gate`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

started=$SECONDS
scripts/venv.sh
scripts/services.sh up
scripts/redis_cluster.sh up
TEST_REDIS_CLUSTER_NODES="${TEST_REDIS_CLUSTER_NODES:-$(scripts/redis_cluster.sh nodes | tail -1)}"
export TEST_REDIS_CLUSTER_NODES
scripts/lint.sh
echo "[check] tests not marked slow (the whole suite: make test)"
.venv/bin/pytest -m "not slow" -q "$@"
echo "[check] done in $((SECONDS - started)) s; the services stay up (make services-down stops them)"
