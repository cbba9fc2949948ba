#!/usr/bin/env bash
# A native Prometheus for the local stack: scrapes the API, every consumer and the rq worker, with the alerting
# rules of docker/prometheus/alerts.yml. The config comes from scripts/prometheus_config.py, which also writes the
# compose stack's docker/prometheus/prometheus.yml: the two cannot drift.
#
#   scripts/prometheus.sh up        install it if missing (apt `prometheus`), write the config, start it (or reload
#                                   a running one with the new config), wait until it is ready
#   scripts/prometheus.sh install   only install (prometheus + promtool); starts nothing
#   scripts/prometheus.sh down      stop the Prometheus this script started (SIGTERM, then SIGKILL)
#   scripts/prometheus.sh status    up/down with its port
#
# State (TSDB, config, log, pid) lives under .local/ (.local/prometheus/, .local/log/prometheus.log).
#
# Environment (defaults): PROMETHEUS_PORT=9090 PROMETHEUS_INTERVAL=5s (scrape and rule evaluation)
#   PROMETHEUS_RETENTION=7d  API_PORT=8000  CONSUMERS=1  CONSUMER_METRICS_PORT=9200 (the first consumer; the
#   others count up, as scripts/run.sh starts them)  RQ_WORKER_METRICS_PORT=9300  PROMETHEUS_TIMEOUT=30
#   PROMETHEUS_RULES=docker/prometheus/alerts.yml (the tests pass a copy with short `for:`)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
LOG_PREFIX='[prometheus]'

PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS_INTERVAL="${PROMETHEUS_INTERVAL:-5s}"
PROMETHEUS_RETENTION="${PROMETHEUS_RETENTION:-7d}"
PROMETHEUS_TIMEOUT="${PROMETHEUS_TIMEOUT:-30}"
PROMETHEUS_RULES="${PROMETHEUS_RULES:-$ROOT/docker/prometheus/alerts.yml}"
API_PORT="${API_PORT:-8000}"
CONSUMERS="${CONSUMERS:-1}"
CONSUMER_METRICS_PORT="${CONSUMER_METRICS_PORT:-9200}"
RQ_WORKER_METRICS_PORT="${RQ_WORKER_METRICS_PORT:-9300}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"

PROM_DIR="$STATE/prometheus"
PID_FILE="$RUN_DIR/prometheus.pid"
CONFIG="$PROM_DIR/prometheus.yml"
LOG_FILE="$LOG_DIR/prometheus.log"
PYTHON="$ROOT/.venv/bin/python"

usage() {
  echo "usage: scripts/prometheus.sh up|install|down|status" >&2
  exit 2
}

ready() {
  curl -fsS -o /dev/null --max-time 2 "http://$HOST:$PROMETHEUS_PORT/-/ready" 2>/dev/null
}

cmd_install() {
  local missing=()
  command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
  command -v curl >/dev/null || missing+=(curl)
  apt_install "${missing[@]+"${missing[@]}"}"
}

write_config() {
  local consumers="" i
  [ -x "$PYTHON" ] || die "$PYTHON is missing: run scripts/venv.sh first"
  for ((i = 0; i < CONSUMERS; i++)); do
    consumers+="${consumers:+,}$HOST:$((CONSUMER_METRICS_PORT + i))"
  done
  mkdir -p "$PROM_DIR/data"
  "$PYTHON" "$SCRIPT_DIR/prometheus_config.py" native --api "$HOST:$API_PORT" --consumers "$consumers" \
    --rq-worker "$HOST:$RQ_WORKER_METRICS_PORT" --rules "$PROMETHEUS_RULES" --interval "$PROMETHEUS_INTERVAL" \
    --out "$CONFIG"
  promtool check config "$CONFIG" >"$LOG_DIR/promtool.log" 2>&1 || {
    show_log_tail "$LOG_DIR/promtool.log"
    die "promtool rejects $CONFIG"
  }
}

cmd_up() {
  local pid t0=$SECONDS
  cmd_install
  write_config
  if pid="$(our_pid_from "$PID_FILE" prometheus prometheus)"; then
    log "already running (pid $pid): reloading its config"
    kill -HUP "$pid"
  else
    port_open "$PROMETHEUS_PORT" && die "port $HOST:$PROMETHEUS_PORT is taken; free it or set PROMETHEUS_PORT"
    log "starting on $HOST:$PROMETHEUS_PORT (scrape and evaluation every $PROMETHEUS_INTERVAL)"
    # shellcheck disable=SC2016  # $$/$1/$@ are for the inner bash
    setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PID_FILE" prometheus \
      --config.file="$CONFIG" --storage.tsdb.path="$PROM_DIR/data" \
      --storage.tsdb.retention.time="$PROMETHEUS_RETENTION" --web.listen-address="$HOST:$PROMETHEUS_PORT" \
      >>"$LOG_FILE" 2>&1 </dev/null 9>&- &
    poll_until 5 0.05 test -s "$PID_FILE" || die "no pid file after start"
  fi
  if ! poll_until "$PROMETHEUS_TIMEOUT" 0.3 ready; then
    show_log_tail "$LOG_FILE"
    die "not ready on $HOST:$PROMETHEUS_PORT within ${PROMETHEUS_TIMEOUT}s (log: $LOG_FILE)"
  fi
  log "ready after $((SECONDS - t0))s: http://$HOST:$PROMETHEUS_PORT (alerts: /alerts, /api/v1/alerts)"
}

cmd_down() {
  local pid
  if ! pid="$(our_pid_from "$PID_FILE" prometheus prometheus)"; then
    log "not running"
    return 0
  fi
  log "stopping pid $pid"
  stop_pid prometheus "$pid" "$STOP_TIMEOUT" || die "pid $pid survived SIGKILL for 30s"
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_status() {
  local pid who=""
  pid="$(our_pid_from "$PID_FILE" prometheus)" && who="  (pid $pid, started by prometheus.sh)"
  if ready; then
    echo "[prometheus] up   $HOST:$PROMETHEUS_PORT$who"
  else
    echo "[prometheus] down $HOST:$PROMETHEUS_PORT$who"
    return 1
  fi
}

main() {
  [ "$#" -eq 1 ] || usage
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  case "$1" in
    up | install | down | status) "cmd_$1" ;;
    *) usage ;;
  esac
}

# Sourced (tests/static), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
