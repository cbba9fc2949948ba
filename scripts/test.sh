#!/usr/bin/env bash
# `make test`: install, start the real services, run the whole suite, stop what this run started.
#
# The suite runs on TEST_WORKERS pytest-xdist workers (default 3; 1 runs it in this process, no xdist). Each
# worker has services of its own — Redis, MariaDB, Kafka and a 3-master Redis Cluster — so a test that
# freezes, kills or restarts one, or flushes the cluster, only touches its own worker's. Worker gw0 uses the
# usual ones (scripts/services.sh and scripts/redis_cluster.sh with REDIS_PORT, DB_PORT, ...); worker gwN
# (N >= 1) the instance SERVICES_INSTANCE=N, on the same ports + 1000*N, its state under .local/instances/N/.
# TEST_KEEP_SERVICES=1 leaves every service up afterwards (`make check` does, for the next loop).
# Extra arguments go to pytest, e.g. `scripts/test.sh -k issue -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

WORKERS="${TEST_WORKERS:-3}"
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || { echo "[test] ERROR: TEST_WORKERS=$WORKERS is not a positive number" >&2; exit 2; }
REDIS_PORT="${REDIS_PORT:-6379}"
DB_PORT="${DB_PORT:-3306}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
REDIS_CLUSTER_PORT="${REDIS_CLUSTER_PORT:-7100}"
TEST_REDIS_FAILOVER_PORT="${TEST_REDIS_FAILOVER_PORT:-7150}"
# The 3-broker Kafka cluster of the Kafka failover tests (scripts/kafka_cluster.sh): each worker's session starts
# its own on first use, on these ports + 1000*N, and stops it at the end.
KAFKA_CLUSTER_PORT="${KAFKA_CLUSTER_PORT:-9192}"
started_at=$SECONDS
# The test brokers start often (every worker's, the three-broker cluster, the restarts of the fault tests) and carry
# little traffic: the client compiler alone starts them with a fraction of the CPU the optimizing one burns on two
# cores. Set KAFKA_JVM_OPTS (even empty) to choose otherwise.
export KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS--XX:TieredStopAtLevel=1}"

# The environment of instance N (0: the usual services).
instance_env() {
  local n="$1" offset=$((1000 * $1))
  echo "SERVICES_INSTANCE=$n REDIS_PORT=$((REDIS_PORT + offset)) DB_PORT=$((DB_PORT + offset))" \
    "KAFKA_PORT=$((KAFKA_PORT + offset)) KAFKA_CONTROLLER_PORT=$((KAFKA_CONTROLLER_PORT + offset))" \
    "REDIS_CLUSTER_PORT=$((REDIS_CLUSTER_PORT + offset)) TEST_REDIS_FAILOVER_PORT=$((TEST_REDIS_FAILOVER_PORT + offset))" \
    "KAFKA_CLUSTER_PORT=$((KAFKA_CLUSTER_PORT + offset))"
}

# in_instance N COMMAND...: run COMMAND with instance N's environment.
in_instance() {
  local n="$1"
  shift
  # shellcheck disable=SC2046  # the words of instance_env are NAME=value assignments
  env $(instance_env "$n") "$@"
}

# `scripts/test.sh --down-instances`: stop the per-worker instances a TEST_KEEP_SERVICES=1 run left up
# (`make services-down` calls it).
if [ "${1:-}" = --down-instances ]; then
  for dir in .local/instances/*/; do
    [ -d "$dir" ] || continue
    in_instance "$(basename "$dir")" scripts/services.sh down
    in_instance "$(basename "$dir")" scripts/redis_cluster.sh down
    in_instance "$(basename "$dir")" scripts/kafka_cluster.sh down
  done
  exit 0
fi

scripts/venv.sh
# The suite starts ~300 Python processes (APIs, consumers, CLI runs). Where PYTHONDONTWRITEBYTECODE is set (this
# machine sets it), none caches what it compiles, and each compiled the project's modules again (0.1-0.2 CPU-s).
.venv/bin/python -m compileall -q -j 0 coupon workers tests bench wsgi.py gunicorn.conf.py >/dev/null

# Services that were already up belong to someone else (a `make run`, say): leave them running.
# (Status is read once into a variable: `status | grep -q` under pipefail fails when grep exits early and
# status gets SIGPIPE, which made services that were up look down, so they were stopped afterwards.)
started=()
for ((n = 0; n < WORKERS; n++)); do
  status="$(in_instance "$n" scripts/services.sh status 2>/dev/null || true)"
  for name in redis mariadb kafka; do
    grep -Eq "^\[services\] $name +up" <<<"$status" || started+=("$n:$name")
  done
  in_instance "$n" scripts/redis_cluster.sh status >/dev/null 2>&1 || started+=("$n:cluster")
done
# The three-broker Kafka cluster of the failover tests is one for the run (they take turns; nine more JVMs would
# crowd two cores): instance 0's, started by the first test that needs it. When this run started it
# (TEST_KAFKA_CLUSTER_OWNED=1), the failover module stops it once its cases are done, and the trap here if the run
# ends before that.
export TEST_KAFKA_CLUSTER_OWNED=0
in_instance 0 scripts/kafka_cluster.sh status >/dev/null 2>&1 || { started+=("0:kafka-cluster"); TEST_KAFKA_CLUSTER_OWNED=1; }
export TEST_KAFKA_CLUSTER="SERVICES_INSTANCE=0 KAFKA_CLUSTER_PORT=$KAFKA_CLUSTER_PORT"
[ "${TEST_KEEP_SERVICES:-0}" != 1 ] || { started=(); TEST_KAFKA_CLUSTER_OWNED=0; }
stop_item() {
  local item="$1"
  if [ "${item#*:}" = cluster ]; then
    in_instance "${item%%:*}" scripts/redis_cluster.sh down || true
  elif [ "${item#*:}" = kafka-cluster ]; then
    in_instance "${item%%:*}" scripts/kafka_cluster.sh down >/dev/null 2>&1 || true
  else
    in_instance "${item%%:*}" scripts/services.sh stop "${item#*:}" || true
  fi
}
# The instances stop side by side (one after the other, three Kafka brokers' controlled shutdowns took ~30 s);
# within one, in order (services.sh runs one at a time per instance anyway).
cleanup() {
  local rc=$? item n stops=()
  for ((n = 0; n < WORKERS; n++)); do
    (for item in "${started[@]}"; do [ "${item%%:*}" != "$n" ] || stop_item "$item"; done) &
    stops+=("$!")
  done
  for n in "${stops[@]}"; do wait "$n" || true; done
  echo "[test] done in $((SECONDS - started_at)) s"
  exit "$rc"
}
trap cleanup EXIT

# Install once (on a new machine: the packages, and the Kafka jars every instance shares), then start all the
# instances at once: instance 0 here, its output on the terminal; the others in the background, into their logs.
scripts/services.sh install
# promtool for the alerting rules' tests and prometheus for the dashboards' live test (tests/static, tests/integration).
scripts/prometheus.sh install
pids=()
for ((n = 1; n < WORKERS; n++)); do
  mkdir -p ".local/instances/$n"
  echo "[test] starting services instance $n ($(instance_env "$n")); log: .local/instances/$n/up.log"
  in_instance "$n" bash -c 'scripts/services.sh up && scripts/redis_cluster.sh up' >".local/instances/$n/up.log" 2>&1 &
  pids+=("$!")
done
scripts/services.sh up
scripts/redis_cluster.sh up
for ((i = 0; i < ${#pids[@]}; i++)); do
  wait "${pids[$i]}" || {
    cat ".local/instances/$((i + 1))/up.log" >&2
    echo "[test] ERROR: services instance $((i + 1)) did not start" >&2
    exit 1
  }
done
TEST_REDIS_CLUSTER_NODES="${TEST_REDIS_CLUSTER_NODES:-$(scripts/redis_cluster.sh nodes | tail -1)}"
export TEST_REDIS_CLUSTER_NODES

export PATH="$ROOT/.venv/bin:$PATH"
args=()
if [ "$WORKERS" -gt 1 ]; then
  for ((n = 1; n < WORKERS; n++)); do
    offset=$((1000 * n))
    nodes="$(in_instance "$n" scripts/redis_cluster.sh nodes | tail -1)"
    export "TEST_SERVICES_gw$n=$(instance_env "$n") KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$((KAFKA_PORT + offset)) TEST_REDIS_CLUSTER_NODES=$nodes"
  done
  args=(-n "$WORKERS")
fi
echo "[test] services up in $((SECONDS - started_at)) s; pytest on $WORKERS worker(s)"
# Not `exec`: the EXIT trap must stop what this run started. The script's status is pytest's (set -e).
# PYTHONDONTWRITEBYTECODE also stops pytest caching the test modules it rewrites for its assertion messages: every
# worker of every run rewrote all of them again (~3 CPU-s each). Empty means unset to Python.
PYTHONDONTWRITEBYTECODE="" pytest "${args[@]}" "$@"
