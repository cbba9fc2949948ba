#!/usr/bin/env bash
# A local three-node Kafka cluster (KRaft) on 127.0.0.1, for the failover tests and the replication benchmark.
#
#   scripts/kafka_cluster.sh up          start the three nodes (what is not running yet), wait until every broker
#                                        is registered, print the bootstrap list
#   scripts/kafka_cluster.sh down        stop the nodes this script started (pid files), wait until gone
#   scripts/kafka_cluster.sh status      each node up/down; exit 0 only when all three answer
#   scripts/kafka_cluster.sh bootstrap   print the bootstrap list (KAFKA_BOOTSTRAP_SERVERS=host:port,...)
#   scripts/kafka_cluster.sh start N     start node N (1..3) if it is not running, wait until the cluster lists it
#   scripts/kafka_cluster.sh stop N      clean stop of node N (SIGTERM: it hands its leaderships over first);
#                                        KILL=1 sends SIGKILL
#   scripts/kafka_cluster.sh wipe        down + remove the nodes' data (the next up formats them afresh)
#
# Three combined broker+controller nodes (node.id 1..3) with a static three-voter quorum
# (controller.quorum.voters; every node's storage is formatted once with the same cluster id). Node N listens on
# KAFKA_CLUSTER_PORT + 2(N-1) (broker) and the port after it (controller): 9192/9193, 9194/9195, 9196/9197 by
# default. scripts/test.sh gives worker N the same ports + 1000*N, like every other service.
# The cluster's defaults are for durability: default.replication.factor=3, min.insync.replicas=2, internal
# topics RF 3 / min ISR 2, unclean leader election off (scripts/kafka/cluster-server.properties.in).
#
# Same jars as scripts/services.sh (Maven Central, .local/kafka/libs, fetched once for every instance); state
# under .local/[instances/N/]kafka-cluster/node-N/ (SERVICES_INSTANCE), logs under its log/kafka-cluster-N/.
#
# Environment (defaults): KAFKA_CLUSTER_PORT=9192 KAFKA_CLUSTER_HEAP=320m; KAFKA_JVM_OPTS (more JVM options)
#   KAFKA_CLUSTER_REPLICA_LAG_MS=10000   replica.lag.time.max.ms (the failover tests use 3000)
#   KAFKA_CLUSTER_TIMEOUT=120            seconds to wait for the brokers
#   STOP_TIMEOUT=30 KILL=0               as in scripts/services.sh
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# services.sh, sourced, only defines its functions: the jar fetch, the Java check, spawn, the apt packages.
# shellcheck source=scripts/services.sh
source "$SCRIPT_DIR/services.sh"
LOG_PREFIX='[kafka-cluster]'

CLUSTER_PORT0="${KAFKA_CLUSTER_PORT:-9192}"
CLUSTER_HEAP="${KAFKA_CLUSTER_HEAP:-320m}"
REPLICA_LAG_MS="${KAFKA_CLUSTER_REPLICA_LAG_MS:-10000}"
CLUSTER_TIMEOUT="${KAFKA_CLUSTER_TIMEOUT:-120}"
NODES=(1 2 3)
CLUSTER_DIR="$STATE/kafka-cluster"

[[ "$CLUSTER_PORT0" =~ ^[0-9]+$ ]] || die "KAFKA_CLUSTER_PORT must be a number"
[[ "$REPLICA_LAG_MS" =~ ^[0-9]+$ ]] || die "KAFKA_CLUSTER_REPLICA_LAG_MS must be a number"

broker_port() { echo $((CLUSTER_PORT0 + 2 * ($1 - 1))); }
controller_port() { echo $((CLUSTER_PORT0 + 2 * ($1 - 1) + 1)); }
node_dir() { echo "$CLUSTER_DIR/node-$1"; }
node_log_dir() { echo "$LOG_DIR/kafka-cluster-$1"; }
node_pid_file() { echo "$RUN_DIR/kafka-cluster-$1.pid"; }
# Alive, and really our broker with this node's config (not a recycled pid).
node_pid() { our_pid_from "$(node_pid_file "$1")" "kafka.Kafka $(node_dir "$1")/server.properties"; }

voters() {
  local out=() n
  for n in "${NODES[@]}"; do out+=("$n@$HOST:$(controller_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

bootstrap_list() {
  local out=() n
  for n in "${NODES[@]}"; do out+=("$HOST:$(broker_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

node_answers() {
  python3 "$SCRIPT_DIR/kafka_ping.py" --bootstrap "$HOST:$(broker_port "$1")" --timeout 0 --quiet >/dev/null 2>&1
}

# Every broker answers and each one's metadata lists all three (registered with the quorum, not fenced).
all_registered() {
  local n
  for n in "${NODES[@]}"; do
    python3 "$SCRIPT_DIR/kafka_ping.py" --bootstrap "$HOST:$(broker_port "$n")" --brokers "${#NODES[@]}" \
      --timeout 0 --quiet >/dev/null 2>&1 || return 1
  done
}

node_write_config() {
  local n="$1" dir
  dir="$(node_dir "$n")"
  mkdir -p "$dir/data" "$(node_log_dir "$n")"
  render_template "$SCRIPT_DIR/kafka/cluster-server.properties.in" "$dir/server.properties" \
    NODE_ID="$n" HOST="$HOST" BROKER_PORT="$(broker_port "$n")" CONTROLLER_PORT="$(controller_port "$n")" \
    VOTERS="$(voters)" DATA="$dir/data" REPLICA_LAG_MS="$REPLICA_LAG_MS"
  render_template "$SCRIPT_DIR/kafka/log4j2.properties.in" "$dir/log4j2.properties" LOG_DIR="$(node_log_dir "$n")"
  render_template "$SCRIPT_DIR/kafka/log4j2-tools.properties.in" "$dir/log4j2-tools.properties"
}

storage_tool() {
  local n="$1"
  shift
  # A short-lived tool: the C1 compiler and the serial collector start it with ~40 % less CPU than the defaults.
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile="$(node_dir "$n")/log4j2-tools.properties" \
    -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool "$@"
}

# One cluster id for all three nodes, made once.
cluster_id() {
  if [ ! -s "$CLUSTER_DIR/cluster.id" ]; then
    storage_tool 1 random-uuid 2>>"$LOG_DIR/kafka-cluster-tools.log" | tr -d '[:space:]' >"$CLUSTER_DIR/cluster.id.tmp" &&
      [ -s "$CLUSTER_DIR/cluster.id.tmp" ] || die "StorageTool random-uuid failed (see $LOG_DIR/kafka-cluster-tools.log)"
    mv "$CLUSTER_DIR/cluster.id.tmp" "$CLUSTER_DIR/cluster.id"
  fi
  cat "$CLUSTER_DIR/cluster.id"
}

# Static quorum: controller.quorum.voters is in the config, so `format` takes neither --standalone nor
# --initial-controllers (those are for a dynamic quorum, KIP-853); every node gets the same cluster id.
node_format() {
  local n="$1" data want
  data="$(node_dir "$n")/data"
  want="voters=$(voters)"
  if [ -f "$data/meta.properties" ]; then
    if [ "$(cat "$data/.formatted-for" 2>/dev/null || true)" != "$want" ]; then
      die "node $n: $data was formatted for $(cat "$data/.formatted-for" 2>/dev/null || echo 'other ports'), now $want; run 'scripts/kafka_cluster.sh wipe' (or keep the old KAFKA_CLUSTER_PORT)"
    fi
    return 0
  fi
  log "node $n: formatting $data (cluster id $(cluster_id), static quorum $(voters))"
  if ! storage_tool "$n" format -t "$(cluster_id)" -c "$(node_dir "$n")/server.properties" \
      >>"$LOG_DIR/kafka-cluster-tools.log" 2>&1; then
    show_log_tail "$LOG_DIR/kafka-cluster-tools.log"
    die "node $n: storage format failed"
  fi
  echo "$want" >"$data/.formatted-for"
}

# launch_node N: start node N in the background unless it runs; does not wait. Prints nothing when it ran.
launch_node() {
  local n="$1" pid port
  if pid="$(node_pid "$n")"; then
    log "node $n: already running (pid $pid, $HOST:$(broker_port "$n"))"
    return 0
  fi
  for port in "$(broker_port "$n")" "$(controller_port "$n")"; do
    if port_open "$port" 1; then
      die "node $n: port $HOST:$port is taken by something this script did not start; set KAFKA_CLUSTER_PORT to free ports"
    fi
  done
  node_write_config "$n"
  node_format "$n"
  log "node $n: starting (broker $HOST:$(broker_port "$n"), controller $HOST:$(controller_port "$n"), heap $CLUSTER_HEAP)"
  rm -f "$(node_pid_file "$n")"
  local extra=()
  read -ra extra <<<"${KAFKA_JVM_OPTS:-}"
  spawn "$(node_pid_file "$n")" "$(node_log_dir "$n")/kafka.out" \
    java -Xms"$CLUSTER_HEAP" -Xmx"$CLUSTER_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${extra[@]}" \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$(node_dir "$n")/log4j2.properties" -Dkafka.logs.dir="$(node_log_dir "$n")" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$(node_dir "$n")/server.properties"
  poll_until 5 0.05 test -s "$(node_pid_file "$n")" || die "node $n: no pid file after start"
}

# Our nodes that died meanwhile end the wait at once, with their log.
registered_or_died() {
  local n
  for n in "${NODES[@]}"; do
    if [ -f "$(node_pid_file "$n")" ] && ! node_pid "$n" >/dev/null; then
      show_log_tail "$(node_log_dir "$n")/kafka.log" "$(node_log_dir "$n")/kafka.out"
      die "node $n exited during startup (logs above)"
    fi
  done
  all_registered
}

await_cluster() {
  local start=$SECONDS
  poll_until "$CLUSTER_TIMEOUT" 0.5 registered_or_died ||
    die "the brokers did not all register within ${CLUSTER_TIMEOUT}s (logs: $LOG_DIR/kafka-cluster-N/)"
  log "all ${#NODES[@]} brokers registered after $((SECONDS - start))s"
}

ensure_ready_to_run() {
  # shellcheck disable=SC2046  # the package names have no spaces
  apt_install $(kafka_packages)
  kafka_check_java
  kafka_fetch_jars
  mkdir -p "$CLUSTER_DIR"
}

cmd_up() {
  local n t0=$SECONDS ours=0
  for n in "${NODES[@]}"; do node_pid "$n" >/dev/null && ours=1; done
  if [ "$ours" -eq 0 ] && all_registered; then
    log "cluster already up on $(bootstrap_list) (not started by this script)"
    log "KAFKA_BOOTSTRAP_SERVERS=$(bootstrap_list)"
    return 0
  fi
  ensure_ready_to_run
  for n in "${NODES[@]}"; do launch_node "$n"; done
  await_cluster
  log "up in $((SECONDS - t0))s"
  log "KAFKA_BOOTSTRAP_SERVERS=$(bootstrap_list)"
}

cmd_start() {
  ensure_ready_to_run
  launch_node "$1"
  await_cluster
}

# stop_nodes N...: SIGTERM (or SIGKILL with KILL=1) to all of them at once, then wait for each. Together, because a
# node stopping cleanly waits for the controller quorum, which the others' stops would take away one by one.
stop_nodes() {
  local n pid sig=TERM
  declare -A pids=()
  [ "$KILL" = 1 ] && sig=KILL
  for n in "$@"; do
    if pid="$(node_pid "$n")"; then
      pids[$n]="$pid"
      log "node $n: stopping pid $pid (SIG$sig)"
      kill -s "$sig" "$pid" 2>/dev/null || true
    elif node_answers "$n"; then
      warn "node $n answers on $HOST:$(broker_port "$n") but was not started by this script: leaving it alone"
    else
      log "node $n: not running"
    fi
  done
  for n in "${!pids[@]}"; do
    stop_pid "node $n" "${pids[$n]}" "$STOP_TIMEOUT" "$sig" || die "node $n: pid ${pids[$n]} survived SIGKILL for 30s"
    rm -f "$(node_pid_file "$n")"
    log "node $n: stopped"
  done
}

cmd_down() { stop_nodes "${NODES[@]}"; }

cmd_stop() { stop_nodes "$1"; }

cmd_status() {
  local n pid who state all=0
  for n in "${NODES[@]}"; do
    who=""
    if node_answers "$n"; then state=up; else state=down; all=1; fi
    if pid="$(node_pid "$n")"; then who="pid $pid, started by kafka_cluster.sh"; elif [ "$state" = up ]; then who="not ours"; fi
    printf '[kafka-cluster] node %s %-4s broker %s:%s controller %s%s\n' "$n" "$state" "$HOST" "$(broker_port "$n")" \
      "$(controller_port "$n")" "${who:+  ($who)}"
  done
  return "$all"
}

cmd_wipe() {
  cmd_down
  log "wipe: removing $CLUSTER_DIR (keeping the Kafka jar cache $KAFKA_LIBS)"
  rm -rf "$CLUSTER_DIR"
}

cluster_usage() {
  echo "usage: scripts/kafka_cluster.sh up|down|status|bootstrap|wipe | start N|stop N (N = 1..3)" >&2
  exit 2
}

cluster_main() {
  local cmd="${1:-}"
  case "$cmd" in
    up | down | status | bootstrap | wipe) [ "$#" -eq 1 ] || cluster_usage ;;
    start | stop) [ "$#" -eq 2 ] && [[ " ${NODES[*]} " == *" $2 "* ]] || cluster_usage ;;
    *) cluster_usage ;;
  esac
  if [ "$cmd" = bootstrap ]; then
    bootstrap_list
    return 0
  fi
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  if [ "$cmd" != status ]; then
    # One kafka_cluster.sh at a time per instance (parallel test workers have their own instance).
    hold_lock "$RUN_DIR/kafka-cluster.lock"
  fi
  "cmd_$cmd" "${@:2}"
}

cluster_main "$@"
