# shellcheck shell=bash
# Sourced by scripts/run.sh: `supervise NAME COMMAND [ARGS...] &` keeps COMMAND running.
#
# When COMMAND exits (crash, or a dependency outage it gave up on), it is started again after a delay that
# doubles on every quick exit (SUPERVISE_MIN_DELAY .. SUPERVISE_MAX_DELAY seconds), so a crash loop costs a
# start every SUPERVISE_MAX_DELAY seconds rather than a spinning CPU; a run that lasted
# SUPERVISE_STABLE_SECONDS or more counts as healthy and resets the delay.
# SIGTERM (or SIGINT) to the supervisor stops COMMAND with SIGTERM, waits for it, and ends the supervisor.

SUPERVISE_MIN_DELAY="${SUPERVISE_MIN_DELAY:-1}"
SUPERVISE_MAX_DELAY="${SUPERVISE_MAX_DELAY:-30}"
SUPERVISE_STABLE_SECONDS="${SUPERVISE_STABLE_SECONDS:-60}"
SUPERVISE_PREFIX="${SUPERVISE_PREFIX:-[run]}"

supervise() {
  local name=$1
  shift
  local child="" delay="$SUPERVISE_MIN_DELAY" started code
  # Kill whatever runs now (the command, or the sleep between restarts) and leave; without the trap a
  # TERM would end the loop and orphan the command.
  trap '[[ -n $child ]] && kill -TERM "$child" 2>/dev/null; [[ -n $child ]] && wait "$child" 2>/dev/null; exit 0' TERM INT
  while true; do
    started=$SECONDS
    "$@" &
    child=$!
    code=0
    wait "$child" || code=$?
    if (( SECONDS - started >= SUPERVISE_STABLE_SECONDS )); then
      delay="$SUPERVISE_MIN_DELAY"
    fi
    echo "$SUPERVISE_PREFIX $name exited (code $code); restarting in ${delay}s" >&2
    sleep "$delay" &
    child=$!
    wait "$child" || true
    delay=$(awk -v d="$delay" -v m="$SUPERVISE_MAX_DELAY" 'BEGIN { d *= 2; if (d > m) d = m; print d }')
  done
}
