#!/usr/bin/env bash
# `make run`: everything needed for a working local stack, then the processes in the foreground.
# Ctrl-C (or SIGTERM) stops every process this script started; the services stay up
# (`make services-down` stops them). Auxiliary processes that exit are restarted (scripts/supervise.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
LOG_PREFIX='[run]'

ADMIN_USERNAME="${ADMIN_USERNAME:-admin}"
ADMIN_PASSWORD="${ADMIN_PASSWORD:-admin-password}"
API_PORT="${API_PORT:-8000}"
CONSUMERS="${CONSUMERS:-1}"
RQ_DASHBOARD_PORT="${RQ_DASHBOARD_PORT:-9181}"
RQ_DASHBOARD_USERNAME="${RQ_DASHBOARD_USERNAME:-$ADMIN_USERNAME}"
RQ_DASHBOARD_PASSWORD="${RQ_DASHBOARD_PASSWORD:-$ADMIN_PASSWORD}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
# The rq worker's /metrics (periodic jobs, sweeper outcomes, the group's lag from the brokers).
RQ_WORKER_METRICS_PORT="${RQ_WORKER_METRICS_PORT:-9300}"
# The services run on REDIS_PORT / DB_PORT / KAFKA_PORT (scripts/services.sh); the app's own defaults are the
# standard ports, so without these a `REDIS_PORT=6382 make run` would talk to someone else's Redis on 6379.
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:${REDIS_PORT:-6379}/0}"
DATABASE_URL="${DATABASE_URL:-mysql+pymysql://${DB_USER:-coupon}:${DB_PASSWORD:-coupon}@127.0.0.1:${DB_PORT:-3306}/${DB_NAME:-coupon}}"
KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:${KAFKA_PORT:-9092}}"
RQ_REDIS_URL="${RQ_REDIS_URL:-$REDIS_URL}"
export API_PORT REDIS_URL DATABASE_URL KAFKA_BOOTSTRAP_SERVERS RQ_REDIS_URL PROMETHEUS_PORT RQ_WORKER_METRICS_PORT

# Outside dev/test the dev default password guards neither the admin nor rq-dashboard.
if [[ "${APP_ENV:-dev}" != dev && "${APP_ENV:-dev}" != test ]]; then
  for name in ADMIN_PASSWORD RQ_DASHBOARD_PASSWORD; do
    if [[ -z "${!name}" || "${!name}" == admin-password ]]; then
      die "$name is the dev default; set a real one for APP_ENV=$APP_ENV"
    fi
  done
fi

scripts/venv.sh
scripts/services.sh up
export PATH="$ROOT/.venv/bin:$PATH"
export FLASK_APP=wsgi

log "applying migrations"
flask db upgrade -d migrations
log "creating Kafka topics"
flask create-topics
flask create-admin "$ADMIN_USERNAME" --password "$ADMIN_PASSWORD"

# shellcheck source=scripts/supervise.sh
source "$ROOT/scripts/supervise.sh"
pids=()
stopping=0
prometheus_started=0
stop_all() {
  stopping=1
  trap - INT TERM EXIT
  echo
  log "stopping ${#pids[@]} processes"
  # Each supervisor passes the TERM on to its process and waits for it (a consumer finishes its batch).
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ $prometheus_started == 1 ]]; then scripts/prometheus.sh down || true; fi
  log "stopped"
}
trap stop_all INT TERM EXIT

# The API is not supervised: when gunicorn itself exits (its master already restarts dead workers), the
# stack is no longer serving, so run.sh stops everything and says so rather than hide a broken API.
gunicorn -c gunicorn.conf.py wsgi:app &
api_pid=$!
pids+=("$api_pid")
# Everything else is auxiliary: when one exits (say rqscheduler during a Redis outage), it is restarted
# with a backoff (scripts/supervise.sh) and the API keeps serving.
METRICS_BASE="${CONSUMER_METRICS_PORT:-9200}"
for i in $(seq "$CONSUMERS"); do
  # Consumer metrics on 9200, 9201, ... (from CONSUMER_METRICS_PORT when set)
  supervise "consumer-$i" env CONSUMER_METRICS_PORT=$((METRICS_BASE + i - 1)) python -m workers.consumer &
  pids+=($!)
done
# The retry machinery: rq-scheduler enqueues the periodic job, an rq worker runs it.
supervise rqscheduler python -m workers.rq_scheduler --url "$RQ_REDIS_URL" --interval 1 &
pids+=($!)
# Registers the periodic jobs (republish failures, settle reservations), again should Redis lose them.
supervise schedule-watcher python -m workers.schedule --watch &
pids+=($!)
supervise rq-worker rq worker --url "$RQ_REDIS_URL" --worker-class workers.rq_worker.Worker coupon-retry &
pids+=($!)
# exec: the supervisor's TERM must reach rq-dashboard itself, not a subshell waiting on it.
dashboard() {
  exec rq-dashboard --bind 127.0.0.1 --port "$RQ_DASHBOARD_PORT" --redis-url "$RQ_REDIS_URL" \
    --username "$RQ_DASHBOARD_USERNAME" --password "$RQ_DASHBOARD_PASSWORD" >/dev/null 2>&1
}
supervise rq-dashboard dashboard &
pids+=($!)

# Up to 20 s for the API to answer; the banner comes either way (gunicorn's own errors are above it).
poll_until 20 0.2 curl -fsS -o /dev/null "http://127.0.0.1:$API_PORT/health" 2>/dev/null || true
# Prometheus scrapes every process started above and evaluates the alerting rules; stopped with the rest. A
# Prometheus that cannot start does not stop the stack: it says why and the API keeps serving.
if CONSUMER_METRICS_PORT="$METRICS_BASE" CONSUMERS="$CONSUMERS" scripts/prometheus.sh up; then
  prometheus_started=1
else
  log "Prometheus did not start (above); the stack runs without it"
fi
cat <<MSG

[run] coupon rush is up on http://127.0.0.1:$API_PORT: API, $CONSUMERS consumer(s), rq worker + rqscheduler.
      Metrics: http://127.0.0.1:$API_PORT/metrics (API), http://127.0.0.1:$METRICS_BASE/metrics (first consumer),
      http://127.0.0.1:$RQ_WORKER_METRICS_PORT/metrics (rq worker).
      Prometheus: http://127.0.0.1:$PROMETHEUS_PORT (alerts: /alerts; docs/RUNBOOK.md says what each means).
      RQ dashboard: http://127.0.0.1:$RQ_DASHBOARD_PORT (user $RQ_DASHBOARD_USERNAME, same password as the admin).
      A worker, consumer or the dashboard that exits is restarted ("[run] NAME exited ...; restarting in Ns").
Log in as the admin:

  curl -s http://127.0.0.1:$API_PORT/api/auth/login -H 'Content-Type: application/json' \\
       -d '{"username": "$ADMIN_USERNAME", "password": "$ADMIN_PASSWORD"}'

Readiness: curl -s http://127.0.0.1:$API_PORT/health/ready    Ctrl-C stops everything.

MSG
api_code=0
wait "$api_pid" || api_code=$?
if [[ $stopping == 0 ]]; then log "the API (gunicorn) exited (code $api_code); stopping the rest"; fi
