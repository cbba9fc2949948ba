#!/usr/bin/env bash
# Local real services for development and tests: Redis, MariaDB, Kafka (KRaft, single node).
#
#   scripts/services.sh up             install what is missing, start all three, wait until each answers
#   scripts/services.sh install        only install what is missing (packages, Kafka jars); starts nothing
#   scripts/services.sh down           stop what this script started (pid files), wait until gone
#   scripts/services.sh status         print each service up/down with its port
#   scripts/services.sh start NAME     NAME = redis | mariadb | kafka
#   scripts/services.sh stop NAME      clean stop (SIGTERM, then SIGKILL after a grace period);
#                                      KILL=1 scripts/services.sh stop NAME sends SIGKILL at once
#   scripts/services.sh restart NAME
#   scripts/services.sh wipe           down + remove data and logs (keeps the Kafka jar cache)
#
# All state lives under .local/ in the repository root. Everything binds to 127.0.0.1.
# Works on a fresh Debian machine as root: missing packages come from apt, Kafka jars from
# Maven Central (scripts/kafka/pom.xml). Idempotent: a service that already answers is left alone.
#
# Environment (defaults): REDIS_PORT=6379 DB_PORT=3306 DB_NAME=coupon DB_USER=coupon
#   DB_PASSWORD=coupon KAFKA_PORT=9092 KAFKA_CONTROLLER_PORT=9093 KAFKA_HEAP=512m
#   KAFKA_JVM_OPTS=                                   more JVM options for the broker (scripts/test.sh sets some)
#   KAFKA_VERSION=4.1.1 LOG4J_VERSION=2.24.3
#   REDIS_APPENDFSYNC=everysec                        Redis keeps its data in an append-only file (AOF): a restart
#                                                     loses no acknowledged write; `no` leaves fsync to the OS, and
#                                                     REDIS_APPENDONLY=no turns persistence off
#   REDIS_MAXMEMORY=512mb                             Redis' memory bound; noeviction: when full, writes fail
#                                                     (503 E5031) instead of Redis silently dropping a gate key
#   REDIS_TIMEOUT=60 DB_TIMEOUT=60 KAFKA_TIMEOUT=90   seconds to wait for a service to answer
#   STOP_TIMEOUT=30                                   seconds between SIGTERM and SIGKILL
#   KILL=1                                            stop/restart/down with SIGKILL
#
# How it is built: SERVICE_TABLE below lists the services; each NAME there provides these functions, and
# the generic code (launch, await, stop_one, status_one) and the commands (cmd_up, cmd_stop, ...) use
# nothing else:
#   NAME_packages    print the apt packages NAME still needs (nothing once installed)
#   NAME_start       start NAME in the background, its pid in $RUN_DIR/NAME.pid; does not wait
#   NAME_ready       succeed when NAME answers on its port
#   NAME_wipe        remove NAME's data
# and optionally
#   NAME_preflight   more checks before a start (e.g. other ports it needs are free)
#   NAME_prepare     fetch or check what NAME needs besides its packages (e.g. Kafka's jars)
#   NAME_await       wait until NAME answers after a start (default: poll NAME_ready up to its timeout)
#   NAME_stopped     clean up after NAME stopped
# Logs are $LOG_DIR/NAME.log (the service's own) and $LOG_DIR/NAME.out (its stdout/stderr).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$SCRIPT_DIR/lib/common.sh"
LOG_PREFIX='[services]'

REDIS_PORT="${REDIS_PORT:-6379}"
DB_PORT="${DB_PORT:-3306}"
DB_NAME="${DB_NAME:-coupon}"
DB_USER="${DB_USER:-coupon}"
DB_PASSWORD="${DB_PASSWORD:-coupon}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${KAFKA_HEAP:-512m}"
KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
LOG4J_VERSION="${LOG4J_VERSION:-2.24.3}"
REDIS_APPENDONLY="${REDIS_APPENDONLY:-yes}"
REDIS_APPENDFSYNC="${REDIS_APPENDFSYNC:-everysec}"
REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-512mb}"
REDIS_TIMEOUT="${REDIS_TIMEOUT:-60}"
DB_TIMEOUT="${DB_TIMEOUT:-60}"
KAFKA_TIMEOUT="${KAFKA_TIMEOUT:-90}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
KILL="${KILL:-0}"

# ---------------------------------------------------------------- the table of services
# In start order (`down` stops them in the reverse order).
#   name      port variable   timeout variable   what /proc/PID/cmdline contains for the pid to be it
SERVICE_TABLE='
  redis     REDIS_PORT      REDIS_TIMEOUT      redis-server
  mariadb   DB_PORT         DB_TIMEOUT         mariadbd
  kafka     KAFKA_PORT      KAFKA_TIMEOUT      kafka.Kafka
'
SERVICES=()
declare -A PORT_VAR=() TIMEOUT_VAR=() PROC_MARKER=()
while read -r name port_var timeout_var marker; do
  [ -n "$name" ] || continue
  SERVICES+=("$name")
  PORT_VAR[$name]="$port_var"
  TIMEOUT_VAR[$name]="$timeout_var"
  PROC_MARKER[$name]="$marker"
done <<<"$SERVICE_TABLE"
unset name port_var timeout_var marker

REDIS_DIR="$STATE/redis"
DB_DIR="$STATE/mariadb"
DB_DATA="$DB_DIR/data"
DB_SOCKET="$DB_DIR/mysqld.sock"
KAFKA_DIR="$STATE/kafka"
# The jars are one cache for every instance.
KAFKA_LIBS="$LOCAL/kafka/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_STAMP="$KAFKA_LIBS/.fetched"

# A unix socket path must fit in 108 bytes; a deep checkout would overflow it.
if [ "${#DB_SOCKET}" -gt 100 ]; then
  DB_SOCKET="/tmp/coupon-mariadb-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1).sock"
fi

usage() {
  cat >&2 <<'EOF'
usage: scripts/services.sh up|install|down|status|wipe
       scripts/services.sh start|stop|restart redis|mariadb|kafka
       (KILL=1 scripts/services.sh stop NAME  sends SIGKILL)
EOF
  exit 2
}

is_service() { [ -n "${1:-}" ] && [ -n "${PORT_VAR[$1]:-}" ]; }
port_of() { local var="${PORT_VAR[$1]}"; echo "${!var}"; }
timeout_of() { local var="${TIMEOUT_VAR[$1]}"; echo "${!var}"; }
pid_file() { echo "$RUN_DIR/$1.pid"; }
logs_of() { echo "$LOG_DIR/$1.log" "$LOG_DIR/$1.out"; }
has_hook() { declare -F "$1_$2" >/dev/null; }

# Print the pid of our running instance of NAME; remove a stale pid file.
our_pid() { our_pid_from "$(pid_file "$1")" "${PROC_MARKER[$1]}" "$1"; }

# The services in reverse start order.
services_reversed() {
  local i
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do echo "${SERVICES[i]}"; done
}

# Start a process in the background with its pid in FILE from the start: the child writes its own pid
# before exec'ing. Output goes to OUT.  spawn FILE OUT COMMAND [ARGS...]
spawn() {
  local file="$1" out="$2"
  shift 2
  # shellcheck disable=SC2016  # $$/$1/$@ are for the inner bash
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$file" "$@" >>"$out" 2>&1 </dev/null 9>&- &
}

# ---------------------------------------------------------------- redis

redis_packages() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || echo redis-server redis-tools
}

redis_ready() {
  command -v redis-cli >/dev/null || return 1
  [ "$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ]
}

redis_start() {
  mkdir -p "$REDIS_DIR"
  rm -f "$(pid_file redis)"
  redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --dir "$REDIS_DIR" \
    --pidfile "$(pid_file redis)" --logfile "$LOG_DIR/redis.log" --save '' \
    --appendonly "$REDIS_APPENDONLY" --appendfsync "$REDIS_APPENDFSYNC" \
    --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction \
    </dev/null >>"$LOG_DIR/redis.out" 2>&1 9>&- \
    || { show_log_tail "$LOG_DIR/redis.out" "$LOG_DIR/redis.log"; die "redis-server failed to start"; }
}

redis_wipe() { rm -rf "$REDIS_DIR"; }

# ---------------------------------------------------------------- mariadb

mariadbd_bin() {
  command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd
}

mariadb_client() {
  command -v mariadb 2>/dev/null || command -v mysql
}

mariadb_packages() {
  { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } &&
    command -v mariadb-install-db >/dev/null &&
    { command -v mariadb >/dev/null || command -v mysql >/dev/null; } ||
    echo mariadb-server mariadb-client
}

db_root() {
  "$(mariadb_client)" --no-defaults --protocol=socket --socket="$DB_SOCKET" -uroot "$@"
}

db_socket_ready() {
  [ -S "$DB_SOCKET" ] && db_root -e 'SELECT 1' >/dev/null 2>&1
}

mariadb_ready() {
  command -v mariadb >/dev/null || command -v mysql >/dev/null || return 1
  MYSQL_PWD="$DB_PASSWORD" timeout 5 "$(mariadb_client)" --no-defaults --protocol=tcp \
    -h"$HOST" -P"$DB_PORT" -u"$DB_USER" -e 'SELECT 1' >/dev/null 2>&1
}

db_init_datadir() {
  [ -d "$DB_DATA/mysql" ] && return 0
  log "mariadb: creating data directory $DB_DATA (first time only)"
  rm -rf "$DB_DATA"
  mkdir -p "$DB_DATA"
  local user_args=(--user="$(id -un)")
  # Its own temporary directory (passed on to the bootstrap mariadbd): two instances set up at once in a shared
  # /tmp removed each other's temporary tables, and one of them failed ("Unknown table mysql.tmp_user_nopasswd").
  mkdir -p "$DB_DIR/tmp"
  mariadb-install-db --no-defaults --datadir="$DB_DATA" "${user_args[@]}" --tmpdir="$DB_DIR/tmp" \
    --auth-root-authentication-method=socket --auth-root-socket-user="$(id -un)" \
    --skip-test-db >"$LOG_DIR/mariadb-install.log" 2>&1 || {
    show_log_tail "$LOG_DIR/mariadb-install.log"
    rm -rf "$DB_DATA"
    die "mariadb-install-db failed"
  }
}

mariadb_start() {
  mkdir -p "$DB_DIR"
  db_init_datadir
  rm -f "$DB_SOCKET" "$(pid_file mariadb)"
  local args=(
    --no-defaults
    --datadir="$DB_DATA" --socket="$DB_SOCKET" --port="$DB_PORT" --bind-address="$HOST"
    --pid-file="$(pid_file mariadb)" --log-error="$LOG_DIR/mariadb.log"
    --skip-name-resolve --max-connections=500
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci
    --innodb-flush-log-at-trx-commit=2 --innodb-buffer-pool-size=256M --innodb-log-file-size=64M
    --innodb-doublewrite=0 --sync-binlog=0 --skip-log-bin
    --tmpdir="$DB_DIR"
  )
  # mariadbd refuses to run as root unless told to.
  [ "$(id -u)" -eq 0 ] && args+=(--user=root)
  # (mariadbd rewrites the same pid into its pid file once it is up.)
  spawn "$(pid_file mariadb)" "$LOG_DIR/mariadb.out" "$(mariadbd_bin)" "${args[@]}"
}

sql_quote() { printf "%s" "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g"; }

db_provision() {
  local user pass ident pattern host sql
  user="$(sql_quote "$DB_USER")"
  pass="$(sql_quote "$DB_PASSWORD")"
  ident="${DB_NAME//\`/\`\`}"
  pattern="${ident//_/\\_}\\_%"
  sql="CREATE DATABASE IF NOT EXISTS \`$ident\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
  sql+="DROP USER IF EXISTS ''@'localhost';"
  sql+="DROP USER IF EXISTS ''@'$(sql_quote "$(hostname 2>/dev/null || echo localhost)")';"
  for host in 127.0.0.1 localhost %; do
    sql+="CREATE USER IF NOT EXISTS '$user'@'$host' IDENTIFIED BY '$pass';"
    sql+="ALTER USER '$user'@'$host' IDENTIFIED BY '$pass';"
    sql+="GRANT ALL PRIVILEGES ON \`$ident\`.* TO '$user'@'$host';"
    sql+="GRANT ALL PRIVILEGES ON \`$pattern\`.* TO '$user'@'$host';"
  done
  sql+="FLUSH PRIVILEGES;"
  db_root -e "$sql" || die "mariadb: could not create database/user $DB_NAME/$DB_USER"
}

# Ours: wait for the root socket and make sure the database and user exist; then wait for the TCP port.
mariadb_await() {
  if our_pid mariadb >/dev/null; then
    db_socket_ready || wait_until mariadb db_socket_ready
    db_provision
  fi
  mariadb_ready || wait_until mariadb mariadb_ready
}

mariadb_stopped() { rm -f "$DB_SOCKET"; }

mariadb_wipe() { rm -rf "$DB_DIR"; }

# ---------------------------------------------------------------- kafka

kafka_jars_wanted() { echo "kafka=$KAFKA_VERSION log4j=$LOG4J_VERSION"; }

kafka_jars_present() {
  [ -f "$KAFKA_STAMP" ] && [ "$(cat "$KAFKA_STAMP")" = "$(kafka_jars_wanted)" ]
}

kafka_packages() {
  command -v java >/dev/null || echo default-jre-headless
  command -v mvn >/dev/null || kafka_jars_present || echo maven
  command -v python3 >/dev/null || echo python3
}

kafka_ready() {
  python3 "$SCRIPT_DIR/kafka_ping.py" --bootstrap "$HOST:$KAFKA_PORT" --timeout 0 --quiet >/dev/null 2>&1
}

kafka_preflight() {
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "kafka: controller port $HOST:$KAFKA_CONTROLLER_PORT is taken; free it or set KAFKA_CONTROLLER_PORT"
  fi
}

kafka_check_java() {
  local v
  v="$(java -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')"
  v="${v#1.}"
  v="${v%%[.+-]*}"
  [ -n "$v" ] && [ "$v" -ge 17 ] 2>/dev/null ||
    die "kafka $KAFKA_VERSION needs Java 17+, but 'java' is version ${v:-unknown} (put a newer java first in PATH)"
}

kafka_fetch_jars() {
  local want
  want="$(kafka_jars_wanted)"
  kafka_jars_present && return 0
  command -v mvn >/dev/null || die "mvn is needed to fetch the Kafka jars"
  log "kafka: fetching Kafka $KAFKA_VERSION + log4j $LOG4J_VERSION jars from Maven Central into $KAFKA_LIBS"
  local tmp="$KAFKA_LIBS.tmp.$$" t0=$SECONDS
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -q -B -f "$SCRIPT_DIR/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" -DincludeScope=runtime \
      -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" >"$LOG_DIR/maven.log" 2>&1; then
    tail -n 30 "$LOG_DIR/maven.log" >&2 || true
    rm -rf "$tmp"
    die "maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is KAFKA_VERSION right? log: $LOG_DIR/maven.log)"
  fi
  ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka_2.13 jar missing after maven fetch"
  rm -rf "$KAFKA_LIBS"
  mv "$tmp" "$KAFKA_LIBS"
  echo "$want" >"$KAFKA_STAMP"
  log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars fetched in $((SECONDS - t0))s"
}

# The broker's and the tools' config, from the templates in scripts/kafka/ (rendered at every start, so
# they follow the ports and paths of this run).
kafka_write_config() {
  mkdir -p "$KAFKA_DIR" "$KAFKA_DATA"
  local file
  for file in log4j2.properties log4j2-tools.properties server.properties; do
    render_template "$SCRIPT_DIR/kafka/$file.in" "$KAFKA_DIR/$file" \
      HOST="$HOST" KAFKA_PORT="$KAFKA_PORT" KAFKA_CONTROLLER_PORT="$KAFKA_CONTROLLER_PORT" \
      KAFKA_DATA="$KAFKA_DATA" LOG_DIR="$LOG_DIR"
  done
}

kafka_tool() {
  # A short-lived tool: the C1 compiler and the serial collector start it with ~40 % less CPU than the defaults.
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2-tools.properties" \
    -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool "$@"
}

kafka_format() {
  local formatted_for="$KAFKA_DATA/.formatted-for" want="controller=$HOST:$KAFKA_CONTROLLER_PORT"
  if [ -f "$KAFKA_DATA/meta.properties" ]; then
    if [ -f "$formatted_for" ] && [ "$(cat "$formatted_for")" != "$want" ]; then
      die "kafka: $KAFKA_DATA was formatted for $(cat "$formatted_for"), now $want; run 'scripts/services.sh wipe' (or keep the old KAFKA_CONTROLLER_PORT)"
    fi
    return 0
  fi
  if [ ! -s "$KAFKA_DIR/cluster.id" ]; then
    kafka_tool random-uuid 2>>"$LOG_DIR/kafka-tools.log" | tr -d '[:space:]' >"$KAFKA_DIR/cluster.id.tmp" &&
      [ -s "$KAFKA_DIR/cluster.id.tmp" ] || die "kafka: StorageTool random-uuid failed (see $LOG_DIR/kafka-tools.log)"
    mv "$KAFKA_DIR/cluster.id.tmp" "$KAFKA_DIR/cluster.id"
  fi
  log "kafka: formatting storage $KAFKA_DATA (cluster id $(cat "$KAFKA_DIR/cluster.id"), first time only)"
  if ! kafka_tool format --standalone -t "$(cat "$KAFKA_DIR/cluster.id")" \
      -c "$KAFKA_DIR/server.properties" >>"$LOG_DIR/kafka-tools.log" 2>&1; then
    show_log_tail "$LOG_DIR/kafka-tools.log"
    die "kafka: storage format failed"
  fi
  echo "$want" >"$formatted_for"
}

kafka_prepare() {
  kafka_check_java
  kafka_fetch_jars
}

kafka_start() {
  kafka_prepare
  kafka_write_config
  kafka_format
  rm -f "$(pid_file kafka)"
  local extra=()
  read -ra extra <<<"${KAFKA_JVM_OPTS:-}"
  spawn "$(pid_file kafka)" "$LOG_DIR/kafka.out" \
    java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${extra[@]}" \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -Dkafka.logs.dir="$LOG_DIR" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
}

kafka_wipe() {
  rm -rf "$KAFKA_DATA" "$KAFKA_DIR/cluster.id" "$KAFKA_DIR"/*.properties
}

# ---------------------------------------------------------------- generic install/start/stop/status

# Install the packages the given services need, in one apt-get run.
ensure_installed() {
  local pkgs=() more=() name out
  for name in "$@"; do
    out="$("${name}_packages")"
    read -ra more <<<"${out//$'\n'/ }"
    pkgs+=("${more[@]}")
  done
  apt_install "${pkgs[@]+"${pkgs[@]}"}"
}

# Outcome of the last launch per service: "started" or "already running".
declare -A OUTCOME=()
# Pid of the process launched by this run, per service.
declare -A LAUNCHED=()

# NAME answers (CHECK succeeds); dies when the process this run launched for NAME has exited meanwhile.
answers_or_died() {
  local name="$1" check="$2"
  "$check" && return 0
  if [ -n "${LAUNCHED[$name]:-}" ] && ! pid_alive "${LAUNCHED[$name]}"; then
    # shellcheck disable=SC2046  # two log file names without spaces
    show_log_tail $(logs_of "$name")
    die "$name exited during startup (logs above; $LOG_DIR)"
  fi
  return 1
}

# wait_until NAME CHECK-FUNCTION: poll until CHECK succeeds; fail with the log tail on timeout
# or when our process died meanwhile.
wait_until() {
  local name="$1" check="$2" limit start
  limit="$(timeout_of "$name")"
  start=$SECONDS
  log "waiting for $name on $HOST:$(port_of "$name") (up to ${limit}s)"
  if poll_until "$limit" 0.5 answers_or_died "$name" "$check"; then
    log "$name answers after $((SECONDS - start))s"
    return 0
  fi
  # shellcheck disable=SC2046  # two log file names without spaces
  show_log_tail $(logs_of "$name")
  die "$name did not answer on $HOST:$(port_of "$name") within ${limit}s (logs above; $LOG_DIR)"
}

# launch NAME: start NAME in the background unless it already answers. Does not wait.
launch() {
  local name="$1" port pid
  port="$(port_of "$name")"
  if pid="$(our_pid "$name")"; then
    if [ -f "$RUN_DIR/$name.port" ] && [ "$(cat "$RUN_DIR/$name.port")" != "$port" ]; then
      die "$name: this checkout already runs it on port $(cat "$RUN_DIR/$name.port") (pid $pid), not $port; stop it first"
    fi
    log "$name: already running (pid $pid, port $port)"
    OUTCOME[$name]="already running (pid $pid)"
    return 0
  fi
  if "${name}_ready"; then
    log "$name: already running on $HOST:$port (not started by this script)"
    OUTCOME[$name]="already running (not ours)"
    return 0
  fi
  if port_open "$port"; then
    die "$name: port $HOST:$port is taken by something that is not a working $name; free it or set ${PORT_VAR[$name]}"
  fi
  if has_hook "$name" preflight; then "${name}_preflight"; fi
  log "$name: starting on $HOST:$port"
  "${name}_start"
  OUTCOME[$name]="started"
  # The pid file appears a moment later (redis daemonizes; the others write it before exec).
  local file
  file="$(pid_file "$name")"
  # shellcheck disable=SC2046  # two log file names without spaces
  poll_until 5 0.05 test -s "$file" || { show_log_tail $(logs_of "$name"); die "$name: no pid file after start"; }
  LAUNCHED[$name]="$(pid_in_file "$file")"
  echo "$port" >"$RUN_DIR/$name.port"
}

# await NAME: wait until NAME answers (NAME_await when it has one).
await() {
  local name="$1"
  if has_hook "$name" await; then
    "${name}_await"
  else
    "${name}_ready" || wait_until "$name" "${name}_ready"
  fi
  if [ "${OUTCOME[$name]:-}" = started ]; then
    OUTCOME[$name]="started (pid ${LAUNCHED[$name]:-?})"
  fi
}

stop_one() {
  local name="$1" pid sig=TERM
  if ! pid="$(our_pid "$name")"; then
    if "${name}_ready"; then
      warn "$name answers on $HOST:$(port_of "$name") but was not started by this script (no pid file): leaving it alone"
      return 2
    fi
    log "$name: not running"
    return 0
  fi
  [ "$KILL" = 1 ] && sig=KILL
  log "$name: stopping pid $pid (SIG$sig)"
  stop_pid "$name" "$pid" "$STOP_TIMEOUT" "$sig" || die "$name: pid $pid survived SIGKILL for 30s"
  rm -f "$(pid_file "$name")" "$RUN_DIR/$name.port"
  if has_hook "$name" stopped; then "${name}_stopped"; fi
  log "$name: stopped"
}

status_one() {
  local name="$1" port pid state who="" ourport
  port="$(port_of "$name")"
  if "${name}_ready"; then state=up; else state=down; fi
  if pid="$(our_pid "$name")"; then
    ourport="$(cat "$RUN_DIR/$name.port" 2>/dev/null || echo "$port")"
    who="pid $pid, started by services.sh"
    if [ "$ourport" != "$port" ]; then
      who="$who on port $ourport"
    elif [ "$state" = down ]; then
      who="$who, running but not answering"
    fi
  elif [ "$state" = up ]; then
    who="not started by services.sh"
  fi
  printf '[services] %-8s %-4s %s:%s%s\n' "$name" "$state" "$HOST" "$port" "${who:+  ($who)}"
}

print_summary() {
  local name
  log "summary:"
  for name in "${SERVICES[@]}"; do
    printf '[services]   %-8s %s:%-5s %s\n' "$name" "$HOST" "$(port_of "$name")" "${OUTCOME[$name]:-?}"
  done
  log "  REDIS_URL=redis://$HOST:$REDIS_PORT/0"
  log "  MariaDB: $HOST:$DB_PORT database=$DB_NAME user=$DB_USER (tests may create ${DB_NAME}_*)"
  log "  KAFKA_BOOTSTRAP_SERVERS=$HOST:$KAFKA_PORT"
}

# ---------------------------------------------------------------- commands
# cmd_X is `scripts/services.sh X`; CMD_ARGS says whether it takes a service NAME.

declare -A CMD_ARGS=([up]=0 [install]=0 [down]=0 [status]=0 [wipe]=0 [start]=1 [stop]=1 [restart]=1)

cmd_up() {
  local t0=$SECONDS name
  ensure_installed "${SERVICES[@]}"
  for name in "${SERVICES[@]}"; do launch "$name"; done
  for name in "${SERVICES[@]}"; do await "$name"; done
  print_summary
  log "up done in $((SECONDS - t0))s"
}

cmd_install() {
  local name
  ensure_installed "${SERVICES[@]}"
  for name in "${SERVICES[@]}"; do
    if has_hook "$name" prepare; then "${name}_prepare"; fi
  done
  log "install: everything the services need is here"
}

cmd_down() {
  local name
  for name in $(services_reversed); do stop_one "$name" || true; done
}

cmd_status() {
  local name
  for name in "${SERVICES[@]}"; do status_one "$name"; done
}

cmd_start() {
  ensure_installed "$1"
  launch "$1"
  await "$1"
  log "$1: ${OUTCOME[$1]}"
}

cmd_stop() {
  local rc=0
  stop_one "$1" || rc=$?
  return "$rc"
}

cmd_restart() {
  local rc=0
  stop_one "$1" || rc=$?
  [ "$rc" -eq 0 ] || die "$1: not restarted (not started by this script)"
  cmd_start "$1"
}

cmd_wipe() {
  local name
  cmd_down
  log "wipe: removing data under $STATE (keeping the Kafka jar cache $KAFKA_LIBS)"
  for name in "${SERVICES[@]}"; do "${name}_wipe"; done
  rm -rf "$LOG_DIR"
  rm -f "$RUN_DIR"/*.pid "$RUN_DIR"/*.port
}

# ---------------------------------------------------------------- main

main() {
  local cmd="${1:-}" nargs
  [ -n "$cmd" ] && [ -n "${CMD_ARGS[$cmd]:-}" ] || usage
  nargs="${CMD_ARGS[$cmd]}"
  [ "$#" -eq $((1 + nargs)) ] || usage
  [ "$nargs" -eq 0 ] || is_service "$2" || usage

  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # One services.sh at a time per checkout (make -j, parallel test runners).
  hold_lock "$RUN_DIR/services.lock"
  "cmd_$cmd" "${@:2}"
}

# Sourced (tests/static), it only defines the functions.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  main "$@"
fi
