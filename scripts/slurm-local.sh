#!/usr/bin/env bash
# Single-node Slurm on localhost for auditgap's Slurm tests and for trying `--executor slurm`.
#
#   scripts/slurm-local.sh start    write /etc/slurm/slurm.conf, start munged, slurmctld, slurmd
#                                   (as root, no systemd) and wait until the node is idle
#   scripts/slurm-local.sh stop     stop the three daemons started by `start`
#   scripts/slurm-local.sh status   print sinfo (exit 0 when the node is up)
#
# Installs nothing: needs Debian's slurmctld, slurmd, slurm-client and munge packages
# (`apt-get install -y slurmctld slurmd slurm-client munge`). Must run as root. The config it
# writes carries a marker line; an /etc/slurm/slurm.conf without that marker is never overwritten.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARKER="# written by auditgap scripts/slurm-local.sh"
LOGDIR=/var/log/slurm
STATE=/var/spool/slurmctld
SPOOL=/var/spool/slurmd
WAIT=${SLURM_LOCAL_WAIT:-60}
HOST=$(hostname -s)

die() { echo "slurm-local: $*" >&2; exit 1; }

# The daemons must not inherit the caller's descriptors (a CI pipe, a test runner's process
# sockets): a daemon holding them open would make the caller wait forever for end-of-file.
close_inherited_fds() {
    local fd
    for fd in $(ls /proc/$$/fd 2>/dev/null); do
        [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null || true
    done
}
daemon() { "$@" </dev/null >/dev/null 2>&1; }

need_tools() {
    for t in munged slurmctld slurmd sinfo sbatch scontrol; do
        command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || die "$t not found; install Debian's slurmctld slurmd slurm-client munge"
    done
    [ "$(id -u)" = 0 ] || die "must run as root (starts the Slurm and munge daemons)"
}

write_conf() {
    if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
        die "$CONF exists and was not written by this script; refusing to overwrite it"
    fi
    # RealMemory must not exceed what the node has: half of the available memory, at most 8 GB.
    local avail mem
    avail=$(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)
    mem=$(( avail / 2 ))
    [ "$mem" -gt 8192 ] && mem=8192
    [ "$mem" -lt 256 ] && die "only ${avail} MB of memory available"
    mkdir -p /etc/slurm "$LOGDIR" "$STATE" "$SPOOL"
    cat > "$CONF" <<EOF
$MARKER
ClusterName=auditgap-local
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
MinJobAge=300
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=100000,bf_interval=1
NodeName=$HOST CPUs=2 RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    if command -v runuser >/dev/null 2>&1; then
        daemon runuser -u munge -- /usr/sbin/munged
    else
        daemon su -s /bin/sh munge -c /usr/sbin/munged
    fi
    for _ in $(seq 1 50); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "munged did not start (see /var/log/munge/munged.log)"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

node_state() { sinfo -h -N -n "$HOST" -o %T 2>/dev/null | head -n1; }

start() {
    need_tools
    write_conf
    start_munge
    running /run/slurmctld.pid || daemon /usr/sbin/slurmctld
    running /run/slurmd.pid || daemon /usr/sbin/slurmd
    local deadline=$(( $(date +%s) + WAIT )) state=""
    while [ "$(date +%s)" -lt "$deadline" ]; do
        state=$(node_state || true)
        case "$state" in
            idle|mixed|allocated|completing) echo "slurm-local: node $HOST is $state"; return 0 ;;
            down*|drain*|drained*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    echo "slurm-local: node $HOST not idle after ${WAIT}s (state: '${state:-unknown}'); logs in $LOGDIR" >&2
    tail -n 20 "$LOGDIR/slurmctld.log" "$LOGDIR/slurmd.log" >&2 2>/dev/null || true
    return 1
}

stop_pid() {
    local f=$1
    if running "$f"; then
        local pid; pid=$(cat "$f")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$f"
}

stop() {
    stop_pid /run/slurmd.pid
    stop_pid /run/slurmctld.pid
    stop_pid /run/munge/munged.pid
    echo "slurm-local: stopped"
}

status() {
    sinfo -N -o "%N %T %c %m %P" && [ -n "$(node_state)" ]
}

case "${1:-}" in
    start) close_inherited_fds; start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
