# shellcheck shell=bash
# Sourced by stack/scripts/stack.sh. Components as background processes: pid files, spawning, stopping, waiting.

pid_of() { cat "$RUN/$1.pid" 2>/dev/null || true; }
is_running() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# Starts "$@" as component $1 in its own session (so stop can kill the whole group).
spawn() {
  local name=$1; shift
  mkdir -p "$RUN" "$LOGS"
  # The daemon keeps none of the caller's other open files: a test run under `flock` would
  # otherwise pass its lock on to a broker it restarts, which then holds it for good.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid "$@" >>"$LOGS/$name.out" 2>&1 </dev/null
  ) &
  echo $! >"$RUN/$name.pid"
}

# Sends SIGTERM to every named component at once, then waits for each (KRaft brokers must
# stop together: the last one alone cannot finish a controlled shutdown without a quorum).
stop_components() {
  local name p i
  local -a waiting=()
  for name in "$@"; do
    p=$(pid_of "$name")
    if [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; then rm -f "$RUN/$name.pid"; continue; fi
    say "stopping $name"
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
    waiting+=("$name:$p")
  done
  for entry in "${waiting[@]}"; do
    name=${entry%%:*} p=${entry##*:}
    for i in $(seq 1 60); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$p" 2>/dev/null; then
      say "$name did not stop within 30 s; killing it"
      kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid"
  done
}

# wait_until NAME TIMEOUT_SECONDS COMMAND...: polls COMMAND until it succeeds, printing progress.
# Fails at once when NAME (or any component listed in WATCHED) has exited.
wait_until() {
  poll_until "$@" || die "$1 did not answer within $2 s; see $LOGS/$1.out (it is still running: 'make stack-down' stops it)"
}

# Like wait_until, but returns 1 when TIMEOUT passes (a process that exits still dies).
poll_until() {
  local name=$1 timeout=$2 start now; shift 2
  start=$(date +%s)
  while true; do
    if "$@" >/dev/null 2>&1; then
      say "  $name is up ($(( $(date +%s) - start )) s)"
      return 0
    fi
    now=$(date +%s)
    local c
    for c in "${WATCHED[@]:-$name}"; do
      if ! is_running "$c"; then
        die "$c exited during start-up; see $LOGS/$c.out (Kafka: $STATE/kafka/node-${c#kafka-}/logs/server.log). Last lines:
$(tail -n 15 "$LOGS/$c.out" 2>/dev/null)"
      fi
    done
    if (( now - start >= timeout )); then return 1; fi
    if (( (now - start) % 10 == 0 )); then say "  waiting for $name ... $(( now - start )) s"; fi
    sleep 1
  done
}
