#!/usr/bin/env bash
# `make test`: install, start the real services, run the whole suite, stop what this run started.
# Extra arguments go to pytest, e.g. `scripts/test.sh -k issue -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/venv.sh

# Services that were already up belong to someone else (a `make run`, say): leave them running.
# (Status is read once into a variable: `status | grep -q` under pipefail fails when grep exits early and
# status gets SIGPIPE, which made services that were up look down, so they were stopped afterwards.)
started=()
status="$(scripts/services.sh status 2>/dev/null || true)"
for name in redis mariadb kafka; do
  if ! grep -Eq "^\[services\] $name +up" <<<"$status"; then
    started+=("$name")
  fi
done
# The Redis Cluster for the cluster-mode tests (REDIS_CLUSTER_PORT, default 7100-7102); same rule.
cluster_started=0
scripts/redis_cluster.sh status >/dev/null 2>&1 || cluster_started=1
cleanup() {
  local rc=$?
  for name in "${started[@]}"; do scripts/services.sh stop "$name" || true; done
  [ "$cluster_started" -eq 0 ] || scripts/redis_cluster.sh down || true
  exit "$rc"
}
trap cleanup EXIT
scripts/services.sh up
scripts/redis_cluster.sh up
export TEST_REDIS_CLUSTER_NODES="${TEST_REDIS_CLUSTER_NODES:-$(scripts/redis_cluster.sh nodes)}"

export PATH="$ROOT/.venv/bin:$PATH"
# Last command: under set -e its exit code (pytest's) is the script's, after cleanup has run.
pytest "$@"
