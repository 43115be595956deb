#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (Debian/Ubuntu, as root, no systemd needed), for
# tests/test_slurm.py. Idempotent: does nothing when the node is already up.
#
#   tests/slurm/start.sh     # installs slurm-wlm + munge with apt-get if missing, writes /etc/slurm/slurm.conf,
#                            # starts munged, slurmctld and slurmd, waits until the node is idle
#   tests/slurm/stop.sh      # stops only the daemons this script started (by their PID files)
#
# No accounting database: `sacct` does not work, so clients must query job states with squeue
# (snakemake: --slurm-status-command squeue; MinJobAge below keeps finished jobs visible to squeue).
# GPUs without a GPU: the node declares $GPUS GPUs as a generic resource, backed by character devices that alias
# /dev/null, so that GPU requests are scheduled and granted for real (torch still sees no CUDA device).
# The node declares CPUS_PER_CPU times the machine's CPUs (SlurmdParameters=config_overrides): a test's
# time-limited training mostly waits, and runs beside the workflow's jobs.
# Partitions: 'debug' (default, no time limit) and 'short' (MaxTime 2 minutes, for time-limit tests).
# Exit status 0 = the node is idle and accepts jobs; otherwise a one-line reason on stderr.
set -euo pipefail

STATE_DIR=/run/plasmidlm-slurm        # PID files of the daemons started here (read by stop.sh)
CONF=/etc/slurm/slurm.conf
LOG_DIR=/var/log/slurm
SPOOL_CTLD=/var/spool/slurmctld
SPOOL_D=/var/spool/slurmd
PARTITION=debug
SHORT_PARTITION=short
GPUS=4
CPUS_PER_CPU=2

say() { echo "slurm/start.sh: $*" >&2; }
fail() { say "cannot start Slurm: $*"; exit 1; }

MARKER="# Written by plasmidlm tests/slurm/start.sh"

node_state() { timeout 3 sinfo --noheader --node="$(hostname -s)" --format=%T 2>/dev/null | head -n1 || true; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND (each try under `timeout 3`)
    local seconds=$1 what=$2; shift 2
    local deadline=$((SECONDS + seconds))
    until timeout 3 "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.5
    done
}

node_is_idle() { [[ "$(node_state)" =~ ^(idle|mixed|allocated|completing) ]]; }

pid_alive() { [[ -s "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Already up (started by an earlier call): nothing to do.
if command -v sinfo >/dev/null && node_is_idle; then
    say "node $(hostname -s) is already up ($(node_state))"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || fail "needs root (installs packages, writes /etc/slurm, starts daemons)"
# Never touch the configuration of a real cluster.
for file in "$CONF" /etc/slurm/gres.conf; do
    if [[ -e "$file" ]] && ! grep -q "^$MARKER" "$file"; then
        fail "$file exists and was not written by this script; not touching it"
    fi
done

# ---- packages ----------------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sinfo >/dev/null \
        || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || fail "slurm is not installed and apt-get is not available"
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm slurmctld slurmd slurm-client munge >/dev/null \
        || fail "apt-get install slurm-wlm slurmctld slurmd slurm-client munge failed"
fi
id slurm >/dev/null 2>&1 || fail "user 'slurm' missing after installing slurm-wlm"
id munge >/dev/null 2>&1 || fail "user 'munge' missing after installing munge"

mkdir -p "$STATE_DIR"

# ---- munge -------------------------------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile=/etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 600 /etc/munge/munge.key
for dir in /run/munge /var/lib/munge /var/log/munge; do
    mkdir -p "$dir"
    chown munge:munge "$dir"
done
chmod 755 /run/munge
if ! timeout 3 bash -c 'munge -n | unmunge' >/dev/null 2>&1; then
    runuser -u munge -- munged --force --pid-file=/run/munge/munged.pid \
        || fail "munged did not start (see /var/log/munge/munged.log)"
    cp /run/munge/munged.pid "$STATE_DIR/munged.pid"
    wait_for 10 munge bash -c 'munge -n | unmunge' || fail "munge does not answer (munge -n | unmunge)"
fi

# ---- slurm.conf --------------------------------------------------------------------------------------
host=$(hostname -s)
cpus=$(($(nproc) * CPUS_PER_CPU))
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
real_mb=$((mem_mb * 9 / 10))               # a little below the machine's memory
def_mem_per_cpu=$((real_mb / cpus))        # without it, every job takes all memory and jobs run one at a time
mkdir -p /etc/slurm "$LOG_DIR" "$SPOOL_CTLD" "$SPOOL_D" /run/slurm
chown slurm:slurm "$LOG_DIR" "$SPOOL_CTLD" /run/slurm   # slurmctld runs as SlurmUser=slurm
for ((gpu = 0; gpu < GPUS; gpu++)); do
    [[ -e /dev/fakegpu$gpu ]] || mknod /dev/fakegpu$gpu c 1 3 || fail "cannot create /dev/fakegpu$gpu"
done
cat > /etc/slurm/gres.conf.new <<GRES
$MARKER: $GPUS fake GPUs (aliases of /dev/null).
AutoDetect=off
NodeName=$host Name=gpu File=/dev/fakegpu[0-$((GPUS - 1))]
GRES
mv /etc/slurm/gres.conf.new /etc/slurm/gres.conf
cat > "$CONF.new" <<CONF
$MARKER: a single-node test cluster without accounting or cgroups.
ClusterName=plasmidlm-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$SPOOL_CTLD
SlurmdSpoolDir=$SPOOL_D
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$LOG_DIR/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem_per_cpu
# finished jobs stay visible to squeue and scontrol for an hour (the Snakemake plugin's squeue status needs >= 120 s;
# tests/test_slurm.py reads the GPUs granted to each job with scontrol at the end of the test session)
MinJobAge=3600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
# At its time limit a job gets SIGTERM, and SIGKILL KillWait seconds later: time to finish a training step.
KillWait=30
OverTimeLimit=0
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb Gres=gpu:$GPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=$SHORT_PARTITION Nodes=$host MaxTime=2 State=UP
CONF
mv "$CONF.new" "$CONF"

# ---- daemons -----------------------------------------------------------------------------------------
if ! timeout 3 scontrol ping 2>/dev/null | grep -q 'is UP'; then
    slurmctld -c || fail "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
    wait_for 15 slurmctld bash -c "scontrol ping | grep -q 'is UP'" \
        || fail "slurmctld is not UP after 15 s (see $LOG_DIR/slurmctld.log)"
    cp /run/slurm/slurmctld.pid "$STATE_DIR/slurmctld.pid"
fi
if ! pid_alive /run/slurm/slurmd.pid; then
    slurmd || fail "slurmd did not start (see $LOG_DIR/slurmd.log)"
    wait_for 5 slurmd test -s /run/slurm/slurmd.pid || fail "slurmd wrote no PID file (see $LOG_DIR/slurmd.log)"
    cp /run/slurm/slurmd.pid "$STATE_DIR/slurmd.pid"
fi

deadline=$((SECONDS + 30))
until node_is_idle; do
    state=$(node_state)
    if [[ "$state" =~ ^(down|drain) ]]; then   # e.g. left down by an earlier run: bring it back
        timeout 3 scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true
    fi
    ((SECONDS < deadline)) || fail "node $host is '${state:-unknown}', not idle, after 30 s (see $LOG_DIR/)"
    sleep 0.5
done
say "node $host is up: $cpus CPUs, $GPUS GPUs, ${real_mb} MB, partitions '$PARTITION' and '$SHORT_PARTITION' (logs in $LOG_DIR)"
