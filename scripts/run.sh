#!/usr/bin/env bash
# `make run`: everything needed for a working local stack, then the processes in the foreground.
# Ctrl-C (or SIGTERM) stops every process this script started; the services stay up
# (`make services-down` stops them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ADMIN_USERNAME="${ADMIN_USERNAME:-admin}"
ADMIN_PASSWORD="${ADMIN_PASSWORD:-admin-password}"
API_PORT="${API_PORT:-8000}"
CONSUMERS="${CONSUMERS:-1}"
RQ_DASHBOARD_PORT="${RQ_DASHBOARD_PORT:-9181}"
RQ_DASHBOARD_USERNAME="${RQ_DASHBOARD_USERNAME:-$ADMIN_USERNAME}"
RQ_DASHBOARD_PASSWORD="${RQ_DASHBOARD_PASSWORD:-$ADMIN_PASSWORD}"
RQ_REDIS_URL="${RQ_REDIS_URL:-${REDIS_URL:-redis://127.0.0.1:6379/0}}"
export API_PORT RQ_REDIS_URL

# Outside dev/test the dev default password guards neither the admin nor rq-dashboard.
if [[ "${APP_ENV:-dev}" != dev && "${APP_ENV:-dev}" != test ]]; then
  for name in ADMIN_PASSWORD RQ_DASHBOARD_PASSWORD; do
    if [[ -z "${!name}" || "${!name}" == admin-password ]]; then
      echo "[run] $name is the dev default; set a real one for APP_ENV=$APP_ENV" >&2
      exit 1
    fi
  done
fi

scripts/venv.sh
scripts/services.sh up
export PATH="$ROOT/.venv/bin:$PATH"
export FLASK_APP=wsgi

echo "[run] applying migrations"
flask db upgrade -d migrations
echo "[run] creating Kafka topics"
flask create-topics
flask create-admin "$ADMIN_USERNAME" --password "$ADMIN_PASSWORD"

pids=()
stopping=0
stop_all() {
  stopping=1
  trap - INT TERM EXIT
  echo
  echo "[run] stopping ${#pids[@]} processes"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "[run] stopped"
}
trap stop_all INT TERM EXIT

gunicorn -c gunicorn.conf.py wsgi:app &
pids+=($!)
METRICS_BASE="${CONSUMER_METRICS_PORT:-9200}"
for i in $(seq "$CONSUMERS"); do
  # Consumer metrics on 9200, 9201, ... (from CONSUMER_METRICS_PORT when set)
  CONSUMER_METRICS_PORT=$((METRICS_BASE + i - 1)) python -m workers.consumer &
  pids+=($!)
done
# The retry machinery: rq-scheduler enqueues the periodic job, an rq worker runs it.
python -m workers.rq_scheduler --url "$RQ_REDIS_URL" --interval 1 &
pids+=($!)
# Registers the periodic republish job, and registers it again should Redis lose it.
python -m workers.schedule --watch &
pids+=($!)
rq worker --url "$RQ_REDIS_URL" --worker-class workers.rq_worker.Worker coupon-retry &
pids+=($!)
rq-dashboard --bind 127.0.0.1 --port "$RQ_DASHBOARD_PORT" --redis-url "$RQ_REDIS_URL" \
  --username "$RQ_DASHBOARD_USERNAME" --password "$RQ_DASHBOARD_PASSWORD" >/dev/null 2>&1 &
pids+=($!)

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$API_PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done
cat <<MSG

[run] coupon rush is up on http://127.0.0.1:$API_PORT: API, $CONSUMERS consumer(s), rq worker + rqscheduler.
      Metrics: http://127.0.0.1:$API_PORT/metrics (API), http://127.0.0.1:$METRICS_BASE/metrics (first consumer).
      RQ dashboard: http://127.0.0.1:$RQ_DASHBOARD_PORT (user $RQ_DASHBOARD_USERNAME, same password as the admin).
Log in as the admin:

  curl -s http://127.0.0.1:$API_PORT/api/auth/login -H 'Content-Type: application/json' \\
       -d '{"username": "$ADMIN_USERNAME", "password": "$ADMIN_PASSWORD"}'

Readiness: curl -s http://127.0.0.1:$API_PORT/health/ready    Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
if [[ $stopping == 0 ]]; then echo "[run] a process exited; stopping the rest"; fi
