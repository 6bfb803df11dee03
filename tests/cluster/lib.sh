# shellcheck shell=bash
# Shared by tests/cluster/up and tests/cluster/down (sourced; the caller defines `log`).

# running PID: the process exists and is not a zombie (a killed process not yet reaped
# still answers kill -0).
running() {
  kill -0 "$1" 2>/dev/null && [[ "$(ps -o stat= -p "$1")" != Z* ]]
}

# stop_recorded STATE NAME GRACE: SIGTERM the process recorded in STATE/pids/NAME, SIGKILL
# it after GRACE seconds, and forget it. Nothing to do when it is not running.
stop_recorded() {
  local pidfile="$1/pids/$2" grace=$3 pid
  [[ -s "$pidfile" ]] || return 0
  pid=$(cat "$pidfile")
  if running "$pid"; then
    log "stopping $2 (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((grace * 2))); do running "$pid" || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}
