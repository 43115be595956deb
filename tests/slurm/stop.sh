#!/usr/bin/env bash
# Stop the Slurm daemons that tests/slurm/start.sh started (and only those), by their PID files.
set -uo pipefail

STATE_DIR=/run/plasmidlm-slurm

stop() {  # stop NAME: TERM the process in $STATE_DIR/NAME.pid, wait up to 10 s, then KILL
    local pidfile="$STATE_DIR/$1.pid" pid
    [[ -s "$pidfile" ]] || return 0
    pid=$(cat "$pidfile")
    # only if that PID still is the daemon we started (not a reused PID)
    if kill -0 "$pid" 2>/dev/null && [[ "$(cat /proc/"$pid"/comm 2>/dev/null)" == "$1" ]]; then
        kill -TERM "$pid"
        for _ in $(seq 20); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        echo "slurm/stop.sh: stopped $1 (pid $pid)" >&2
    fi
    rm -f "$pidfile"
}

stop slurmd
stop slurmctld
stop munged
