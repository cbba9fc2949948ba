#!/usr/bin/env bash
# A local Redis Cluster on 127.0.0.1 for development, tests and the scaling measurements.
#
#   scripts/redis_cluster.sh up       start the nodes, create the cluster, wait for cluster_state:ok
#   scripts/redis_cluster.sh down     stop the nodes this script started (pid files), forget the cluster
#   scripts/redis_cluster.sh status   each node up/down, its role, and the cluster state
#   scripts/redis_cluster.sh nodes    print the nodes as REDIS_CLUSTER_NODES wants them (host:port,...)
#   scripts/redis_cluster.sh rejoin PORT  start a node that died again with its own cluster config: it comes back
#                                     as a replica of the node that took over its slots (start it only once that
#                                     replica was promoted: a master back empty before that keeps its slots, and its
#                                     replica then copies the emptiness)
#
# Environment (defaults):
#   REDIS_CLUSTER_PORT=7100      port of the first node; the others follow (7100..7102, or ..7105); clusters whose
#                                first ports are 50 or more apart are independent (`down` stops only its own)
#   REDIS_CLUSTER_MASTERS=3      masters (the 16384 slots are split evenly between them)
#   REDIS_CLUSTER_REPLICAS=0     replicas per master (1 = 3 masters + 3 replicas)
#   REDIS_CLUSTER_TIMEOUT=60     seconds to wait for cluster_state:ok
#   REDIS_CLUSTER_NODE_TIMEOUT=5000  cluster-node-timeout (ms)
#   STOP_TIMEOUT=30              seconds between SIGTERM and SIGKILL on down
#
# Each node also uses its port + 10000 as the cluster bus. State (nodes-PORT.conf, logs, pid files) lives
# under .local/; like scripts/services.sh's Redis, the nodes keep no data across restarts, so `down`
# also forgets the cluster and the next `up` creates it afresh. Idempotent: `up` on a healthy cluster does
# nothing (a cluster someone else started is used as it is and never stopped); ports answered by something
# that is not a healthy cluster make it stop with an error, never touch it.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
LOG_PREFIX='[cluster]'
DATA_DIR="$STATE/redis-cluster"

PORT0="${REDIS_CLUSTER_PORT:-7100}"
MASTERS="${REDIS_CLUSTER_MASTERS:-3}"
REPLICAS="${REDIS_CLUSTER_REPLICAS:-0}"
TIMEOUT="${REDIS_CLUSTER_TIMEOUT:-60}"
NODE_TIMEOUT="${REDIS_CLUSTER_NODE_TIMEOUT:-5000}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
PORT_BLOCK=50

usage() {
  echo "usage: scripts/redis_cluster.sh up|down|status|nodes|rejoin PORT" >&2
  exit 2
}

[[ "$MASTERS" =~ ^[0-9]+$ && "$MASTERS" -ge 3 ]] || die "REDIS_CLUSTER_MASTERS must be 3 or more (redis-cli refuses fewer)"
[[ "$REPLICAS" =~ ^[0-9]+$ ]] || die "REDIS_CLUSTER_REPLICAS must be a number"
COUNT=$((MASTERS * (1 + REPLICAS)))
PORTS=()
for ((i = 0; i < COUNT; i++)); do PORTS+=($((PORT0 + i))); done

pid_file() { echo "$RUN_DIR/redis-cluster-$1.pid"; }
cli() { local port="$1"; shift; timeout 5 redis-cli -h "$HOST" -p "$port" "$@"; }
answers() { [ "$(cli "$1" ping 2>/dev/null || true)" = PONG ]; }
info_field() { cli "$1" cluster info 2>/dev/null | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }

# Alive and really our redis-server on that port (not a recycled pid).
our_pid() { our_pid_from "$(pid_file "$1")" "redis-server.*:$1"; }

ensure_installed() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  APT_LOG="$LOG_DIR/apt-cluster.log" apt_install redis-server redis-tools
}

launch() {
  local port="$1" dir="$DATA_DIR/$1"
  mkdir -p "$dir"
  redis-server --daemonize yes --bind "$HOST" --port "$port" --dir "$dir" \
    --cluster-enabled yes --cluster-config-file "nodes-$port.conf" --cluster-node-timeout "$NODE_TIMEOUT" \
    --pidfile "$(pid_file "$port")" --logfile "$LOG_DIR/redis-cluster-$port.log" \
    --save "" --appendonly no </dev/null >/dev/null 2>&1 9>&- ||
    die "redis-server on port $port failed to start (log: $LOG_DIR/redis-cluster-$port.log)"
}

# Wait until every node answers PING (TIMEOUT seconds for all of them).
await_nodes() {
  local start=$SECONDS port
  for port in "${PORTS[@]}"; do
    poll_until $((TIMEOUT - (SECONDS - start))) 0.1 answers "$port" ||
      die "node $port does not answer (log: $LOG_DIR/redis-cluster-$port.log)"
  done
}

# Every node sees the whole cluster and says cluster_state:ok.
cluster_ok() {
  local port
  for port in "${PORTS[@]}"; do
    [ "$(info_field "$port" cluster_state)" = ok ] || return 1
    [ "$(info_field "$port" cluster_known_nodes)" = "$COUNT" ] || return 1
  done
  # A replica counts only once it is attached to its master.
  [ "$REPLICAS" -eq 0 ] || [ "$(cli "$PORT0" cluster nodes 2>/dev/null | grep -c slave || true)" -eq $((MASTERS * REPLICAS)) ]
}

replica_synced() { ! is_replica "$1" || cli "$1" info replication 2>/dev/null | grep -q '^master_link_status:up'; }
is_replica() { cli "$1" info replication 2>/dev/null | grep -q '^role:slave'; }

await_ok() {
  local start=$SECONDS port
  poll_until "$TIMEOUT" 0.2 cluster_ok || { cli "$PORT0" cluster info >&2 || true; die "cluster not ok after ${TIMEOUT}s"; }
  log "cluster_state:ok on all $COUNT nodes after $((SECONDS - start))s"
  # A replica that has not finished its first sync refuses to be promoted ("disconnected from master for longer
  # than allowed"), so a master lost right after `up` would take its slots down for good: wait for every link.
  for port in "${PORTS[@]}"; do
    poll_until $((TIMEOUT - (SECONDS - start))) 0.2 replica_synced "$port" ||
      die "replica $port has not synced with its master after ${TIMEOUT}s"
  done
}

nodes_list() {
  local out=() port
  for port in "${PORTS[@]}"; do out+=("$HOST:$port"); done
  (IFS=,; echo "${out[*]}")
}

up() {
  local port started=0 formed=0 ours=0
  ensure_installed
  for port in "${PORTS[@]}"; do our_pid "$port" >/dev/null && ours=1; done
  if [ "$ours" -eq 0 ] && cluster_ok; then
    # Like services.sh: a healthy cluster someone else runs on these ports is used, never touched.
    log "cluster already up on $(nodes_list) (not started by this script)"
    return 0
  fi
  for port in "${PORTS[@]}"; do
    if our_pid "$port" >/dev/null; then
      continue
    fi
    if answers "$port" || port_open "$port" 1; then
      die "port $HOST:$port is taken by something this script did not start; set REDIS_CLUSTER_PORT to free ports"
    fi
    if port_open $((port + 10000)) 1; then
      die "cluster bus port $HOST:$((port + 10000)) is taken; set REDIS_CLUSTER_PORT to free ports"
    fi
    # No data survives a restart, so an old cluster config would only describe empty slots' owners. A replica
    # writes the RDB of its full sync to dump.rdb even with --save ""; loaded at start, its keys would make the
    # node claim their slots and the new cluster could never be created.
    rm -f "$DATA_DIR/$port/nodes-$port.conf" "$DATA_DIR/$port/dump.rdb"
    launch "$port"
    started=$((started + 1))
  done
  await_nodes
  [ "$started" -eq 0 ] || log "started $started node(s) on $HOST:${PORTS[0]}..${PORTS[-1]}"
  if cluster_ok; then
    log "cluster already up: $(nodes_list)"
    return 0
  fi
  # Create the cluster only from nodes that know nobody yet; anything else is a half-built cluster.
  for port in "${PORTS[@]}"; do
    if [ "$(info_field "$port" cluster_known_nodes)" != 1 ] || [ "$(info_field "$port" cluster_slots_assigned)" != 0 ]; then
      formed=1
    fi
  done
  if [ "$formed" -eq 1 ]; then
    log "nodes already belong to a cluster that is not ok yet; waiting for it (if it never gets ok: down, then up)"
    await_ok
    return 0
  fi
  log "creating the cluster: $MASTERS masters, $REPLICAS replica(s) each"
  local addrs=()
  for port in "${PORTS[@]}"; do addrs+=("$HOST:$port"); done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$REPLICAS" --cluster-yes \
    >"$LOG_DIR/redis-cluster-create.log" 2>&1 ||
    { tail -n 20 "$LOG_DIR/redis-cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
  await_ok
  log "REDIS_CLUSTER_NODES=$(nodes_list)"
}

stop_port() {
  local port="$1" pid
  pid="$(our_pid "$port")" || {
    answers "$port" && log "node $port answers but was not started by this script: leaving it alone"
    return 0
  }
  stop_pid "node $port" "$pid" "$STOP_TIMEOUT" || die "node $port: pid $pid survived SIGKILL for 30s"
  rm -f "$(pid_file "$port")" "$DATA_DIR/$port/nodes-$port.conf" "$DATA_DIR/$port/dump.rdb"
  log "node $port stopped"
}

down() {
  local port file ports=("${PORTS[@]}")
  # Also the nodes of an earlier `up` with other settings (e.g. with replicas) from the same first port: every
  # pid file of ours in this cluster's block of PORT_BLOCK ports. A cluster whose REDIS_CLUSTER_PORT is
  # PORT_BLOCK or more away (the tests' failover cluster on 7150 beside 7100) is someone else's and stays up.
  for file in "$RUN_DIR"/redis-cluster-*.pid; do
    [ -e "$file" ] || continue
    port="${file##*/redis-cluster-}"
    port="${port%.pid}"
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge "$PORT0" ] && [ "$port" -lt $((PORT0 + PORT_BLOCK)) ] || continue
    [[ " ${ports[*]} " == *" $port "* ]] || ports+=("$port")
  done
  for port in "${ports[@]}"; do stop_port "$port"; done
}

rejoin() {
  local port="$1"
  [[ " ${PORTS[*]} " == *" $port "* ]] || die "port $port is not a node of this cluster (${PORTS[0]}..${PORTS[-1]})"
  ! our_pid "$port" >/dev/null || die "node $port is running"
  [ -f "$DATA_DIR/$port/nodes-$port.conf" ] || die "node $port has no cluster config to rejoin with; use down, then up"
  rm -f "$DATA_DIR/$port/dump.rdb"
  launch "$port"
  poll_until "$TIMEOUT" 0.1 answers "$port" || die "node $port does not answer (log: $LOG_DIR/redis-cluster-$port.log)"
  rejoined() { is_replica "$1" && replica_synced "$1"; }
  poll_until "$TIMEOUT" 0.1 rejoined "$port" || die "node $port did not come back as a synced replica"
  log "node $port rejoined the cluster as a replica"
}

status() {
  local port pid who role
  for port in "${PORTS[@]}"; do
    who=""
    if pid="$(our_pid "$port")"; then who="pid $pid, started by redis_cluster.sh"; elif answers "$port"; then who="not ours"; fi
    if answers "$port"; then
      role="$(cli "$port" role 2>/dev/null | head -n1)"
      printf '[cluster] %s:%s up   %-6s %s\n' "$HOST" "$port" "$role" "${who:+($who)}"
    else
      printf '[cluster] %s:%s down\n' "$HOST" "$port"
    fi
  done
  if cluster_ok; then log "cluster_state:ok"; else log "cluster not ok"; return 1; fi
}

main() {
  [ "$#" -eq 1 ] || [ "${1:-}" = rejoin ] || usage
  mkdir -p "$RUN_DIR" "$LOG_DIR" "$DATA_DIR"
  case "$1" in
    rejoin)
      [ "$#" -eq 2 ] || usage
      hold_lock "$RUN_DIR/redis-cluster.lock"
      rejoin "$2"
      ;;
    up|down)
      # One cluster script at a time per checkout.
      hold_lock "$RUN_DIR/redis-cluster.lock"
      "$1"
      ;;
    status) status ;;
    nodes) nodes_list ;;
    *) usage ;;
  esac
}

main "$@"
