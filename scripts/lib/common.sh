# shellcheck shell=bash
# Shared helpers of the scripts under scripts/ (sourced, never run): logging with the script's prefix,
# polling with a timeout, ports, pid files of the processes a script started, stopping them, apt installs,
# and rendering the config templates. Works under `set -euo pipefail`.
#
#   source "$SCRIPT_DIR/lib/common.sh"
#   LOG_PREFIX='[services]'           # before the first log/warn/die
#
# Sets ROOT (the checkout), LOCAL (.local/, git-ignored: caches shared by every instance), STATE (this
# instance's data), RUN_DIR (pid, port and lock files), LOG_DIR and HOST (everything binds to 127.0.0.1).
# Only SERVICES_INSTANCE is read from the environment: an exported HOST or LOG_DIR meant for something else
# must not move the services.
#
# SERVICES_INSTANCE=N (N >= 1) is a further, independent set of services from the same checkout, its state
# under .local/instances/N/ (`make test` runs one per pytest-xdist worker, on ports of its own); unset or 0 is
# the usual one, under .local/.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
INSTANCE="${SERVICES_INSTANCE:-0}"
if ! [[ "$INSTANCE" =~ ^[0-9]+$ ]]; then
  printf '[%s] ERROR: SERVICES_INSTANCE=%s is not a number\n' "${0##*/}" "$INSTANCE" >&2
  exit 2
fi
if [ "$INSTANCE" -eq 0 ]; then STATE="$LOCAL"; else STATE="$LOCAL/instances/$INSTANCE"; fi
# shellcheck disable=SC2034  # used by the scripts that source this file, not here
RUN_DIR="$STATE/run"
LOG_DIR="$STATE/log"
HOST=127.0.0.1
LOG_PREFIX="[${0##*/}]"

# ---------------------------------------------------------------- logging

log() { printf '%s %s\n' "$LOG_PREFIX" "$*"; }
warn() { printf '%s WARNING: %s\n' "$LOG_PREFIX" "$*" >&2; }
die() { printf '%s ERROR: %s\n' "$LOG_PREFIX" "$*" >&2; exit 1; }

# show_log_tail FILE...: the last 30 lines of each non-empty FILE, on stderr.
show_log_tail() {
  local f
  for f in "$@"; do
    [ -s "$f" ] || continue
    printf '%s ---- last 30 lines of %s ----\n' "$LOG_PREFIX" "$f" >&2
    tail -n 30 "$f" >&2
  done
}

# ---------------------------------------------------------------- waiting

# Microseconds since the epoch (EPOCHREALTIME's decimal point follows the locale).
_now_us() {
  local t="$EPOCHREALTIME"
  REPLY="${t//[.,]/}"
}

# poll_until SECONDS INTERVAL COMMAND [ARGS...]: run COMMAND until it succeeds (return 0) or SECONDS (a whole
# number) have passed since the first try (return 1), sleeping INTERVAL seconds between tries. COMMAND runs
# in this shell, so it may `die` to end the wait early; it runs at least once.
poll_until() {
  local limit="$1" interval="$2" start
  shift 2
  _now_us
  start="$REPLY"
  while :; do
    "$@" && return 0
    _now_us
    [ $((REPLY - start)) -lt $((limit * 1000000)) ] || return 1
    sleep "$interval"
  done
}

# ---------------------------------------------------------------- ports

# port_open PORT [SECONDS]: something accepts connections on $HOST:PORT (bash /dev/tcp, no extra tools).
port_open() {
  timeout "${2:-2}" bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# ---------------------------------------------------------------- pid files and processes

# pid_alive PID: some thread of PID is not a zombie. (An exited process stays a zombie until its parent,
# here often PID 1, reaps it, and kill -0 still succeeds on a zombie; a process whose main thread exited
# while other threads still run shows Z on the leader only.)
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

# pid_in_file FILE: print the pid FILE holds (digits only; empty when FILE is missing or unreadable).
pid_in_file() {
  tr -dc '0-9' <"$1" 2>/dev/null || true
}

# pid_runs PID PATTERN: PID's command line (arguments joined by spaces) matches the grep PATTERN, so a
# recycled pid of some other program is not taken for ours.
pid_runs() {
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q -- "$2"
}

# our_pid_from FILE PATTERN [LABEL]: print the pid in FILE if that process is alive and its command line
# matches PATTERN. Return 1 if there is no FILE, or if it is stale (that pid is gone or now runs something
# else): then remove FILE, and say so on stderr when a LABEL is given.
our_pid_from() {
  local file="$1" pattern="$2" label="${3:-}" pid
  [ -f "$file" ] || return 1
  pid="$(pid_in_file "$file")"
  if [ -n "$pid" ] && pid_alive "$pid" && pid_runs "$pid" "$pattern"; then
    echo "$pid"
    return 0
  fi
  [ -z "$label" ] || log "$label: removing stale pid file (pid ${pid:-?} is gone)" >&2
  rm -f "$file"
  return 1
}

# stop_pid LABEL PID GRACE [SIGNAL]: send SIGNAL (TERM unless given) to PID and wait until it is gone; after
# GRACE seconds of TERM, send KILL (with a warning naming LABEL). Return 1 if it outlived KILL by 30 s.
stop_pid() {
  local label="$1" pid="$2" grace="$3" sig="${4:-TERM}" waited=0
  kill -s "$sig" "$pid" 2>/dev/null || true
  while pid_alive "$pid"; do
    if [ "$sig" = TERM ] && [ "$waited" -ge $((grace * 10)) ]; then
      warn "$label: still alive after ${grace}s, sending SIGKILL"
      sig=KILL
      kill -s KILL "$pid" 2>/dev/null || true
      waited=0
    elif [ "$sig" = KILL ] && [ "$waited" -ge 300 ]; then
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

# ---------------------------------------------------------------- locking

# hold_lock FILE: take an exclusive lock on FILE for the rest of this script, on file descriptor 9 (saying
# so when it has to wait). Daemons started while holding it must not inherit it: start them with 9>&-.
hold_lock() {
  exec 9>"$1"
  if ! flock -n 9; then
    log "another ${0##*/} is running here; waiting for it"
    flock 9
  fi
}

# ---------------------------------------------------------------- installs

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=0

# Wait while another apt/dpkg runs (up to 900 s).
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

# apt_install PKG...: apt-get install the packages (nothing when none are given), apt-get update first (once
# per run). Its output goes to APT_LOG ($LOG_DIR/apt.log unless set). Debian's maintainer scripts are kept
# from starting system-wide services (redis, mariadb) on our ports.
apt_install() {
  [ "$#" -gt 0 ] || return 0
  command -v apt-get >/dev/null || die "need to install $* but apt-get is not available"
  local policy=/usr/sbin/policy-rc.d created_policy=0 apt_log="${APT_LOG:-$LOG_DIR/apt.log}"
  wait_for_apt
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update (once)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null ||
      die "apt-get update failed"
    APT_UPDATED=1
  fi
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    created_policy=1
  fi
  log "apt-get install -y $* (this takes a while the first time)"
  local rc=0 t0=$SECONDS
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "$@" \
    >"$apt_log" 2>&1 || rc=$?
  [ "$created_policy" -eq 1 ] && as_root rm -f "$policy"
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$apt_log" >&2 || true
    die "apt-get install $* failed (full log: $apt_log)"
  fi
  log "apt-get install done in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- templates

# render_template TEMPLATE OUT NAME=VALUE...: write TEMPLATE to OUT with every @NAME@ replaced by VALUE
# (plain text replacement; no other expansion happens). Fails on a placeholder that is left over.
render_template() {
  local template="$1" out="$2" text pair name left
  shift 2
  [ -f "$template" ] || die "template $template is missing"
  text="$(cat "$template"; printf x)"
  text="${text%x}"
  for pair in "$@"; do
    name="${pair%%=*}"
    # Quoted pattern and replacement: no globbing, and no `&` (patsub_replacement) in the value.
    text="${text//"@$name@"/"${pair#*=}"}"
  done
  left="$(printf '%s' "$text" | grep -o '@[A-Z][A-Z0-9_]*@' | head -n 1 || true)"
  [ -z "$left" ] || die "$template: no value for the placeholder $left"
  printf '%s' "$text" >"$out.tmp"
  mv "$out.tmp" "$out"
}
