#!/usr/bin/env bash
# Start a real single-node SLURM (slurmctld + slurmd + munged) on loopback for tests/workflow/test_slurm.py.
#
#   scripts/slurm/setup.sh [STATE_DIR]      # default /tmp/smart-slurm; prints `export SLURM_CONF=...` on success
#   scripts/slurm/stop.sh  [STATE_DIR]      # stops exactly the daemons this script started (PID files)
#
# Installs Debian's slurm-wlm + munge when missing (needs root and apt-get). Everything else lives in STATE_DIR:
# slurm.conf, gres.conf, logs, spool, PID files and the fake GPU char devices, so nothing under /etc/slurm changes
# and clients find the cluster through SLURM_CONF. Settings follow shared/DESIGN.md: proctrack/linuxproc, task/none,
# no accounting daemon (hence Snakemake's `slurm-status-command: squeue`), cons_tres with fake GPUs as gres.
# Env: SMART_SLURM_PARTITION (smarttest), SMART_SLURM_GPUS (2; 0 = no gres), SMART_SLURM_PORT (16817, +1 for slurmd).
set -euo pipefail

DIR=$(realpath -m "${1:-/tmp/smart-slurm}")
PARTITION=${SMART_SLURM_PARTITION:-smarttest}
NGPU=${SMART_SLURM_GPUS:-2}
PORT=${SMART_SLURM_PORT:-16817}
t0=$(date +%s.%N)

die() { echo "setup.sh: $*" >&2; exit 2; }
# Exit code 3 means "cannot provide SLURM here" (the test skips with this message); 2 means a real failure.
cannot() { echo "setup.sh: cannot start SLURM: $*" >&2; exit 3; }

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    [ "$(id -u)" = 0 ] || cannot "slurm-wlm/munge are not installed and installing them needs root"
    command -v apt-get >/dev/null || cannot "slurm-wlm/munge are not installed and there is no apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || cannot "apt-get update failed (no package mirror reachable?)"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null || cannot "apt-get install slurm-wlm munge failed"
fi
[ "$(id -u)" = 0 ] || cannot "slurmd must run as root to launch jobs"
t_install=$(date +%s.%N)

mkdir -p "$DIR"/{state,spool,log,dev,munge}
HOST=$(hostname -s)
CPUS=$(nproc)
# Leave headroom for the OS; jobs asking for more than RealMemory are rejected at submission, which is what we want.
MEM=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) * 9 / 10 ))

# --- munge: reuse a running munged (its key), else start our own with a fresh key and our own PID file ---------
if ! munge -n </dev/null >/dev/null 2>&1; then
    install -d -o root -m 0700 /etc/munge /var/lib/munge /var/log/munge
    install -d -o root -m 0755 /run/munge
    [ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none; chmod 0400 /etc/munge/munge.key; }
    munged --force --pid-file="$DIR/munged.pid" 2>"$DIR/log/munged.err" || die "munged failed: $(cat "$DIR/log/munged.err")"
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n </dev/null >/dev/null 2>&1 || die "munged started but munge -n fails"
fi

# --- fake GPUs: char devices with /dev/null's numbers, enough for slurmd's gres bookkeeping -----------------
GRES_NODE=""
if [ "$NGPU" -gt 0 ]; then
    : > "$DIR/gres.conf"
    for i in $(seq 0 $((NGPU - 1))); do
        [ -e "$DIR/dev/nvidia$i" ] || mknod "$DIR/dev/nvidia$i" c 1 3
        echo "NodeName=$HOST Name=gpu Type=fake File=$DIR/dev/nvidia$i" >> "$DIR/gres.conf"
    done
    GRES_NODE="Gres=gpu:fake:$NGPU"
fi

cat > "$DIR/slurm.conf" <<CONF
# Written by scripts/slurm/setup.sh — single-node test cluster on loopback.
ClusterName=smarttest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
$( [ "$NGPU" -gt 0 ] && echo "GresTypes=gpu" )
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM $GRES_NODE State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$DIR/slurm.conf"

# Job steps need the config at the compiled-in default path: snakemake-executor-plugin-slurm-jobstep strips every
# SLURM_* variable (SLURM_CONF included) before its nested `srun`, which then fails with "Could not establish a
# configuration source". Link /etc/slurm/slurm.conf to ours, but never replace a real cluster's file.
DEFAULT_CONF=/etc/slurm/slurm.conf
if [ -L "$DEFAULT_CONF" ] && [ "$(readlink "$DEFAULT_CONF")" = "$SLURM_CONF" ]; then
    :
elif [ -e "$DEFAULT_CONF" ] || [ -L "$DEFAULT_CONF" ]; then
    cannot "$DEFAULT_CONF exists and is not this test cluster's (a real SLURM is configured here; not touching it)"
else
    mkdir -p /etc/slurm
    ln -s "$SLURM_CONF" "$DEFAULT_CONF"
fi

# --- daemons (-i: ignore state from an earlier run of this script; PID files in STATE_DIR for stop.sh) ---------
slurmctld -f "$SLURM_CONF" -i || die "slurmctld failed: $(tail -5 "$DIR/log/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" || die "slurmd failed: $(tail -5 "$DIR/log/slurmd.log" 2>/dev/null)"

state=""
for _ in $(seq 120); do
    state=$(sinfo -h -N -n "$HOST" -o %t 2>/dev/null | head -1 || true)
    [ "$state" = idle ] && break
    sleep 0.5
done
[ "$state" = idle ] || die "node $HOST is '${state:-unreachable}', not idle, after 60 s; see $DIR/log"
t_end=$(date +%s.%N)

printf 'setup.sh: SLURM up (node %s idle, partition %s, %s CPUs, %s MB, %s fake GPUs): install/check %.1f s, daemons %.1f s\n' \
    "$HOST" "$PARTITION" "$CPUS" "$MEM" "$NGPU" "$(awk "BEGIN {print $t_install - $t0}")" "$(awk "BEGIN {print $t_end - $t_install}")" >&2
echo "export SLURM_CONF=$SLURM_CONF"
