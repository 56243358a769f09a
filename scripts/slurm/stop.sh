#!/usr/bin/env bash
# Stop the daemons scripts/slurm/setup.sh started, by the PID files in STATE_DIR (never by process name).
set -uo pipefail
DIR=$(realpath -m "${1:-/tmp/smart-slurm}")
for name in slurmd slurmctld munged; do
    pidfile="$DIR/$name.pid"
    [ -s "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$pidfile"
done
# Remove the default-path link setup.sh made, only if it still points at this state dir.
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$DIR/slurm.conf" ]; then
    rm -f /etc/slurm/slurm.conf
fi
echo "stop.sh: stopped SLURM daemons of $DIR" >&2
