#!/usr/bin/env bash
# Local real services for development and tests: Redis, MariaDB, Kafka (KRaft, single node).
#
#   scripts/services.sh up             install what is missing, start all three, wait until each answers
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
#   KAFKA_VERSION=4.1.1 LOG4J_VERSION=2.24.3
#   REDIS_TIMEOUT=60 DB_TIMEOUT=60 KAFKA_TIMEOUT=90   seconds to wait for a service to answer
#   STOP_TIMEOUT=30                                   seconds between SIGTERM and SIGKILL
#   KILL=1                                            stop/restart/down with SIGKILL
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
LOCAL="$ROOT/.local"
RUN_DIR="$LOCAL/run"
LOG_DIR="$LOCAL/log"

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
REDIS_TIMEOUT="${REDIS_TIMEOUT:-60}"
DB_TIMEOUT="${DB_TIMEOUT:-60}"
KAFKA_TIMEOUT="${KAFKA_TIMEOUT:-90}"
STOP_TIMEOUT="${STOP_TIMEOUT:-30}"
KILL="${KILL:-0}"

HOST=127.0.0.1
SERVICES=(redis mariadb kafka)

REDIS_DIR="$LOCAL/redis"
DB_DIR="$LOCAL/mariadb"
DB_DATA="$DB_DIR/data"
DB_SOCKET="$DB_DIR/mysqld.sock"
KAFKA_DIR="$LOCAL/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_STAMP="$KAFKA_LIBS/.fetched"

# A unix socket path must fit in 108 bytes; a deep checkout would overflow it.
if [ "${#DB_SOCKET}" -gt 100 ]; then
  DB_SOCKET="/tmp/coupon-mariadb-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1).sock"
fi

log() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/services.sh up|down|status|wipe
       scripts/services.sh start|stop|restart redis|mariadb|kafka
       (KILL=1 scripts/services.sh stop NAME  sends SIGKILL)
EOF
  exit 2
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

port_of() {
  case "$1" in
    redis) echo "$REDIS_PORT" ;;
    mariadb) echo "$DB_PORT" ;;
    kafka) echo "$KAFKA_PORT" ;;
  esac
}

# Something listens on 127.0.0.1:PORT (bash /dev/tcp, no extra tools).
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# ---------------------------------------------------------------- pid files

pid_file() { echo "$RUN_DIR/$1.pid"; }

# What /proc/PID/cmdline must contain for the pid to be that service.
proc_marker() {
  case "$1" in
    redis) echo "redis-server" ;;
    mariadb) echo "mariadbd" ;;
    kafka) echo "kafka.Kafka" ;;
  esac
}

# Alive: some thread of PID is not a zombie. (An exited process stays a zombie until its parent,
# here often PID 1, reaps it, and kill -0 still succeeds on a zombie; a process whose main
# thread exited while other threads still run shows Z on the leader only.)
pid_alive() {
  local pid="$1" stat rest
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -d "/proc/$pid" ] || return 0
  for stat in /proc/"$pid"/task/*/stat; do
    rest="$(cat "$stat" 2>/dev/null || true)"
    rest="${rest##*) }"
    case "${rest%% *}" in
      Z|X|"") ;;
      *) return 0 ;;
    esac
  done
  return 1
}

# Print the pid of our running instance of NAME; remove a stale pid file.
our_pid() {
  local name="$1" file pid
  file="$(pid_file "$name")"
  [ -f "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file" 2>/dev/null || true)"
  if [ -n "$pid" ] && pid_alive "$pid" &&
     tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(proc_marker "$name")"; then
    echo "$pid"
    return 0
  fi
  log "$name: removing stale pid file (pid ${pid:-?} is gone)" >&2
  rm -f "$file"
  return 1
}

# ---------------------------------------------------------------- installs

APT_UPDATED=0

wait_for_apt() {
  local waited=0 comm busy
  while :; do
    busy=""
    for comm in /proc/[0-9]*/comm; do
      case "$(cat "$comm" 2>/dev/null || true)" in
        apt|apt-get|aptitude|dpkg|unattended-upgr*) busy=1; break ;;
      esac
    done
    [ -z "$busy" ] && return 0
    [ "$waited" -eq 0 ] && log "another apt/dpkg is running; waiting for it to finish"
    [ "$waited" -ge 900 ] && die "apt/dpkg still busy after 900 s"
    sleep 2
    waited=$((waited + 2))
  done
}

apt_install() {
  [ "$#" -gt 0 ] || return 0
  command -v apt-get >/dev/null || die "need to install $* but apt-get is not available"
  local policy=/usr/sbin/policy-rc.d created_policy=0
  wait_for_apt
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update (once)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null ||
      die "apt-get update failed"
    APT_UPDATED=1
  fi
  # Keep Debian's maintainer scripts from starting system-wide redis/mariadb on our ports.
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    created_policy=1
  fi
  log "apt-get install -y $* (this takes a while the first time)"
  local rc=0 t0=$SECONDS
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@" \
    >"$LOG_DIR/apt.log" 2>&1 || rc=$?
  [ "$created_policy" -eq 1 ] && as_root rm -f "$policy"
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$LOG_DIR/apt.log" >&2 || true
    die "apt-get install $* failed (full log: $LOG_DIR/apt.log)"
  fi
  log "apt-get install done in $((SECONDS - t0))s"
}

# Install the packages the given services need, in one apt-get run.
ensure_installed() {
  local pkgs=() name
  for name in "$@"; do
    case "$name" in
      redis)
        command -v redis-server >/dev/null && command -v redis-cli >/dev/null || pkgs+=(redis-server redis-tools)
        ;;
      mariadb)
        { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; } &&
          command -v mariadb-install-db >/dev/null &&
          { command -v mariadb >/dev/null || command -v mysql >/dev/null; } ||
          pkgs+=(mariadb-server mariadb-client)
        ;;
      kafka)
        command -v java >/dev/null || pkgs+=(default-jre-headless)
        command -v mvn >/dev/null || kafka_jars_present || pkgs+=(maven)
        command -v python3 >/dev/null || pkgs+=(python3)
        ;;
    esac
  done
  apt_install "${pkgs[@]+"${pkgs[@]}"}"
}

mariadbd_bin() {
  command -v mariadbd 2>/dev/null || echo /usr/sbin/mariadbd
}

mariadb_client() {
  command -v mariadb 2>/dev/null || command -v mysql
}

# ---------------------------------------------------------------- waiting

show_log_tail() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    printf '[services] ---- last 30 lines of %s ----\n' "$f" >&2
    tail -n 30 "$f" >&2
  done
}

logs_of() {
  case "$1" in
    redis) echo "$LOG_DIR/redis.log $LOG_DIR/redis.out" ;;
    mariadb) echo "$LOG_DIR/mariadb.log $LOG_DIR/mariadb.out" ;;
    kafka) echo "$LOG_DIR/kafka.log $LOG_DIR/kafka.out" ;;
  esac
}

timeout_of() {
  case "$1" in
    redis) echo "$REDIS_TIMEOUT" ;;
    mariadb) echo "$DB_TIMEOUT" ;;
    kafka) echo "$KAFKA_TIMEOUT" ;;
  esac
}

# wait_until NAME CHECK-FUNCTION: poll until CHECK succeeds; fail with the log tail on timeout
# or when our process died meanwhile.
wait_until() {
  local name="$1" check="$2" limit start now
  limit="$(timeout_of "$name")"
  start=$SECONDS
  log "waiting for $name on $HOST:$(port_of "$name") (up to ${limit}s)"
  while :; do
    if "$check"; then
      log "$name answers after $((SECONDS - start))s"
      return 0
    fi
    now=$SECONDS
    if [ -n "${LAUNCHED[$name]:-}" ] && ! pid_alive "${LAUNCHED[$name]}"; then
      # shellcheck disable=SC2046
      show_log_tail $(logs_of "$name")
      die "$name exited during startup (logs above; $LOG_DIR)"
    fi
    if [ $((now - start)) -ge "$limit" ]; then
      # shellcheck disable=SC2046
      show_log_tail $(logs_of "$name")
      die "$name did not answer on $HOST:$(port_of "$name") within ${limit}s (logs above; $LOG_DIR)"
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- redis

redis_ready() {
  command -v redis-cli >/dev/null || return 1
  [ "$(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null || true)" = "PONG" ]
}

redis_launch() {
  mkdir -p "$REDIS_DIR"
  rm -f "$(pid_file redis)"
  redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" --dir "$REDIS_DIR" \
    --pidfile "$(pid_file redis)" --logfile "$LOG_DIR/redis.log" --save '' --appendonly no \
    </dev/null >>"$LOG_DIR/redis.out" 2>&1 9>&- \
    || { show_log_tail "$LOG_DIR/redis.out" "$LOG_DIR/redis.log"; die "redis-server failed to start"; }
}

# ---------------------------------------------------------------- mariadb

db_root() {
  "$(mariadb_client)" --no-defaults --protocol=socket --socket="$DB_SOCKET" -uroot "$@"
}

db_socket_ready() {
  [ -S "$DB_SOCKET" ] && db_root -e 'SELECT 1' >/dev/null 2>&1
}

db_ready() {
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
  mariadb-install-db --no-defaults --datadir="$DB_DATA" "${user_args[@]}" \
    --auth-root-authentication-method=socket --auth-root-socket-user="$(id -un)" \
    --skip-test-db >"$LOG_DIR/mariadb-install.log" 2>&1 || {
    show_log_tail "$LOG_DIR/mariadb-install.log"
    rm -rf "$DB_DATA"
    die "mariadb-install-db failed"
  }
}

db_launch() {
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
  # The child writes its own pid before exec'ing, so the pid file is right from the start
  # (mariadbd rewrites the same pid once it is up).
  # shellcheck disable=SC2016  # $$/$1/$@ are for the inner bash
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$(pid_file mariadb)" \
    "$(mariadbd_bin)" "${args[@]}" >>"$LOG_DIR/mariadb.out" 2>&1 </dev/null 9>&- &
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

# ---------------------------------------------------------------- kafka

kafka_ready() {
  python3 "$SCRIPT_DIR/kafka_ping.py" --bootstrap "$HOST:$KAFKA_PORT" --timeout 0 --quiet >/dev/null 2>&1
}

kafka_jars_wanted() { echo "kafka=$KAFKA_VERSION log4j=$LOG4J_VERSION"; }

kafka_jars_present() {
  [ -f "$KAFKA_STAMP" ] && [ "$(cat "$KAFKA_STAMP")" = "$(kafka_jars_wanted)" ]
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
  local tmp="$KAFKA_DIR/libs.tmp" t0=$SECONDS
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

kafka_write_config() {
  mkdir -p "$KAFKA_DIR" "$KAFKA_DATA"
  # Kafka 4.x logs through Log4j 2 only (no log4j 1 properties any more); without a config
  # Log4j 2 prints just ERRORs to the console.
  cat >"$KAFKA_DIR/log4j2.properties" <<EOF
# generated by scripts/services.sh
status = warn
name = kafka-local
# Log4j's own JVM shutdown hook would stop logging before Kafka's shutdown hook has logged
# its clean shutdown; the file appender flushes every line anyway.
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = $LOG_DIR/kafka.log
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.zk.name = org.apache.zookeeper
logger.zk.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.network.name = kafka.network.RequestChannel\$
logger.network.level = WARN
logger.controller.name = kafka.controller
logger.controller.level = INFO
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = WARN
logger.raft.name = org.apache.kafka.raft
logger.raft.level = WARN
logger.metadata.name = org.apache.kafka.image
logger.metadata.level = WARN
logger.storage.name = org.apache.kafka.storage
logger.storage.level = WARN
logger.logmgr.name = kafka.log
logger.logmgr.level = WARN
logger.coord.name = org.apache.kafka.coordinator
logger.coord.level = WARN
logger.clients.name = org.apache.kafka.clients
logger.clients.level = WARN
logger.common.name = org.apache.kafka.common
logger.common.level = WARN
logger.partition.name = kafka.cluster.Partition
logger.partition.level = WARN
logger.replica.name = kafka.server.ReplicaFetcherManager
logger.replica.level = WARN
EOF
  cat >"$KAFKA_DIR/log4j2-tools.properties" <<'EOF'
# generated by scripts/services.sh (StorageTool runs)
status = warn
name = kafka-tools
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = STDERR
EOF
  cat >"$KAFKA_DIR/server.properties" <<EOF
# generated by scripts/services.sh -- single-node KRaft broker+controller for dev/tests
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a SIGKILL the restarted broker is refused (DUPLICATE_BROKER_REGISTRATION) until the old
# incarnation's session expires: keep that short (default 9 s) for fault-injection tests.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
auto.create.topics.enable=true
delete.topic.enable=true
num.network.threads=3
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=24
log.segment.bytes=104857600
log.retention.check.interval.ms=300000
EOF
}

kafka_tool() {
  java -Xmx256m -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2-tools.properties" \
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

kafka_launch() {
  kafka_check_java
  kafka_fetch_jars
  kafka_write_config
  kafka_format
  rm -f "$(pid_file kafka)"
  # shellcheck disable=SC2016  # $$/$1/$@ are for the inner bash
  setsid nohup bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$(pid_file kafka)" \
    java -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" -Dkafka.logs.dir="$LOG_DIR" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties" \
    >>"$LOG_DIR/kafka.out" 2>&1 </dev/null 9>&- &
}

# ---------------------------------------------------------------- generic start/stop

ready() {
  case "$1" in
    redis) redis_ready ;;
    mariadb) db_ready ;;
    kafka) kafka_ready ;;
  esac
}

# Outcome of the last launch per service: "started" or "already running".
declare -A OUTCOME=()
# Pid of the process launched by this run, per service.
declare -A LAUNCHED=()

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
  if ready "$name"; then
    log "$name: already running on $HOST:$port (not started by this script)"
    OUTCOME[$name]="already running (not ours)"
    return 0
  fi
  if port_open "$port"; then
    die "$name: port $HOST:$port is taken by something that is not a working $name; free it or set $(case $name in redis) echo REDIS_PORT;; mariadb) echo DB_PORT;; kafka) echo KAFKA_PORT;; esac)"
  fi
  if [ "$name" = kafka ] && port_open "$KAFKA_CONTROLLER_PORT"; then
    die "kafka: controller port $HOST:$KAFKA_CONTROLLER_PORT is taken; free it or set KAFKA_CONTROLLER_PORT"
  fi
  log "$name: starting on $HOST:$port"
  case "$name" in
    redis) redis_launch ;;
    mariadb) db_launch ;;
    kafka) kafka_launch ;;
  esac
  OUTCOME[$name]="started"
  # The pid file appears a moment later (redis daemonizes; the others write it before exec).
  local _ file
  file="$(pid_file "$name")"
  for _ in $(seq 1 100); do
    [ -s "$file" ] && break
    sleep 0.05
  done
  # shellcheck disable=SC2046
  [ -s "$file" ] || { show_log_tail $(logs_of "$name"); die "$name: no pid file after start"; }
  LAUNCHED[$name]="$(tr -dc '0-9' <"$file")"
  echo "$port" >"$RUN_DIR/$name.port"
}

# await NAME: wait until NAME answers (and for mariadb, make sure the database/user exist).
await() {
  local name="$1"
  case "$name" in
    redis) ready redis || wait_until redis redis_ready ;;
    mariadb)
      if our_pid mariadb >/dev/null; then
        db_socket_ready || wait_until mariadb db_socket_ready
        db_provision
      fi
      ready mariadb || wait_until mariadb db_ready
      ;;
    kafka) ready kafka || wait_until kafka kafka_ready ;;
  esac
  if [ "${OUTCOME[$name]:-}" = started ]; then
    OUTCOME[$name]="started (pid ${LAUNCHED[$name]:-?})"
  fi
}

stop_one() {
  local name="$1" pid sig=TERM grace="$STOP_TIMEOUT" waited=0
  if ! pid="$(our_pid "$name")"; then
    if ready "$name"; then
      warn "$name answers on $HOST:$(port_of "$name") but was not started by this script (no pid file): leaving it alone"
      return 2
    fi
    log "$name: not running"
    return 0
  fi
  [ "$KILL" = 1 ] && sig=KILL
  log "$name: stopping pid $pid (SIG$sig)"
  kill -s "$sig" "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do
    if [ "$sig" = TERM ] && [ "$waited" -ge $((grace * 10)) ]; then
      warn "$name: still alive after ${grace}s, sending SIGKILL"
      sig=KILL
      kill -s KILL "$pid" 2>/dev/null || true
      waited=0
    elif [ "$sig" = KILL ] && [ "$waited" -ge 300 ]; then
      die "$name: pid $pid survived SIGKILL for 30s"
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$(pid_file "$name")" "$RUN_DIR/$name.port"
  [ "$name" = mariadb ] && rm -f "$DB_SOCKET"
  log "$name: stopped"
}

status_one() {
  local name="$1" port pid state who="" ourport
  port="$(port_of "$name")"
  if ready "$name"; then state=up; else state=down; fi
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

check_name() {
  case "${1:-}" in
    redis|mariadb|kafka) ;;
    *) usage ;;
  esac
}

# ---------------------------------------------------------------- main

main() {
  local cmd="${1:-}" name rc=0
  case "$cmd" in
    up|down|status|wipe) [ "$#" -eq 1 ] || usage ;;
    start|stop|restart) [ "$#" -eq 2 ] || usage; check_name "$2" ;;
    *) usage ;;
  esac

  mkdir -p "$RUN_DIR" "$LOG_DIR"
  # One services.sh at a time per checkout (make -j, parallel test runners).
  exec 9>"$RUN_DIR/services.lock"
  if ! flock -n 9; then
    log "another services.sh is running here; waiting for it"
    flock 9
  fi

  case "$cmd" in
    up)
      local t0=$SECONDS
      ensure_installed "${SERVICES[@]}"
      for name in "${SERVICES[@]}"; do launch "$name"; done
      for name in "${SERVICES[@]}"; do await "$name"; done
      print_summary
      log "up done in $((SECONDS - t0))s"
      ;;
    down)
      for name in kafka mariadb redis; do stop_one "$name" || true; done
      ;;
    status)
      for name in "${SERVICES[@]}"; do status_one "$name"; done
      ;;
    start)
      ensure_installed "$2"
      launch "$2"
      await "$2"
      log "$2: ${OUTCOME[$2]}"
      ;;
    stop)
      stop_one "$2" || rc=$?
      return "$rc"
      ;;
    restart)
      stop_one "$2" || rc=$?
      [ "$rc" -eq 0 ] || die "$2: not restarted (not started by this script)"
      ensure_installed "$2"
      launch "$2"
      await "$2"
      log "$2: ${OUTCOME[$2]}"
      ;;
    wipe)
      for name in kafka mariadb redis; do stop_one "$name" || true; done
      log "wipe: removing data under $LOCAL (keeping the Kafka jar cache $KAFKA_LIBS)"
      rm -rf "$REDIS_DIR" "$DB_DIR" "$KAFKA_DATA" "$KAFKA_DIR/cluster.id" "$KAFKA_DIR/libs.tmp" \
        "$KAFKA_DIR"/*.properties "$LOG_DIR"
      rm -f "$RUN_DIR"/*.pid "$RUN_DIR"/*.port
      ;;
  esac
}

main "$@"
