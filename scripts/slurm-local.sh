#!/usr/bin/env bash
# A real single-node Slurm (munged, slurmctld, slurmd) on a Debian machine without systemd, for the
# sweep's Slurm tests. Measured facts: ../shared/reference/slurm.md.
#
#   scripts/slurm-local.sh start    # install if missing (apt-get, --no-install-recommends), start the daemons
#   scripts/slurm-local.sh status   # which daemons run, and sinfo
#   scripts/slurm-local.sh stop     # SIGTERM to the PIDs the daemons it started wrote (never by name)
#
# Everything (slurm.conf, state, spool, logs, PID files) lives in $PLATEAU_SLURM_DIR (default
# /tmp/plateau-slurm). Clients need `export SLURM_CONF=$PLATEAU_SLURM_DIR/slurm.conf` (printed by start).
# Needs root (apt-get, munge's key, daemons).
set -euo pipefail

DIR=${PLATEAU_SLURM_DIR:-/tmp/plateau-slurm}
NODE=node
CONF=$DIR/slurm.conf
export SLURM_CONF=$CONF

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
    local missing=0
    for b in slurmctld slurmd sbatch squeue munged; do command -v "$b" >/dev/null 2>&1 || missing=1; done
    [ "$missing" = 0 ] && return 0
    echo "slurm-local: installing slurmctld slurmd slurm-client munge" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null 2>&1 || {
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    }
}

start_munge() {
    if [ ! -s /etc/munge/munge.key ]; then
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    chmod 755 /run/munge
    if alive "$DIR/munged.pid"; then return 0; fi
    # munged refuses to run as root; its own PID file goes to /run/munge, copied into $DIR.
    setpriv --reuid=munge --regid=munge --init-groups munged --force
    for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
    cp /run/munge/munged.pid "$DIR/munged.pid"
}

write_conf() {
    local cpus mem
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    cat >"$CONF" <<EOF
ClusterName=plateau
SlurmctldHost=$(hostname -s)(127.0.0.1)
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
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
MaxArraySize=1001
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    start_munge
    write_conf
    alive "$DIR/slurmctld.pid" || slurmctld -i
    alive "$DIR/slurmd.pid" || slurmd -N "$NODE"
    for _ in $(seq 100); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm-local: up (config $CONF)"
            echo "export SLURM_CONF=$CONF"
            return 0
        fi
        sleep 0.2
    done
    echo "slurm-local: the node did not become idle; logs in $DIR/log" >&2
    sinfo >&2 || true
    return 1
}

stop() {
    local pids=()
    for d in slurmd slurmctld munged; do
        if alive "$DIR/$d.pid"; then
            pids+=("$(cat "$DIR/$d.pid")")
            kill -TERM "$(cat "$DIR/$d.pid")"
        fi
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && echo "slurm-local: PID $p still running after 10 s" >&2
    done
    rm -f "$DIR/munged.pid"
    echo "slurm-local: stopped ${#pids[@]} daemon(s)"
}

status() {
    local up=0
    for d in munged slurmctld slurmd; do
        if alive "$DIR/$d.pid"; then echo "$d: running (PID $(cat "$DIR/$d.pid"))"; up=$((up + 1)); else echo "$d: not running"; fi
    done
    [ "$up" = 3 ] && sinfo || true
    [ "$up" = 3 ]
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
