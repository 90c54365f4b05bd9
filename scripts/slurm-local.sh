#!/usr/bin/env bash
# slurm-local.sh start|stop [--clean]|status
#
# Starts and stops a throwaway single-node Slurm cluster (slurmctld + slurmd,
# plus munged when none is running) on this machine, for tests that submit
# real sbatch jobs. Needs root and the Debian packages slurm-wlm and munge;
# it installs nothing itself (the Makefile does that).
#
#   eval "$(scripts/slurm-local.sh start)"   # prints: export SLURM_CONF=...
#   sbatch --array=0-3 ...; squeue; ...
#   scripts/slurm-local.sh status            # exit 0 when our daemons are up
#   scripts/slurm-local.sh stop [--clean]    # --clean also removes the state dir
#
# Everything lives in ${SLURM_LOCAL_DIR:-/tmp/gradscope-slurm}: slurm.conf,
# the controller's state, slurmd's spool, pid files, logs and jobcomp.log (one
# line per finished job with its exit code, since there is no sacct here).
# `stop` first cancels every job of this cluster (running jobs' slurmstepd
# processes would outlive the daemons), then kills only daemons whose pid
# files are in that directory, and munged only when this script started it
# (marker file munged.ours). Without --clean the next `start` recovers the
# controller state (job records, job id counter).
#
# For tests: `scontrol requeue <jobid>_<task>` is what preemption does: every
# process of that task gets SIGTERM (SIGKILL KillWait s later), the task goes
# PENDING (Reason=BeginTime), runs again with SLURM_RESTART_COUNT=1, 2, ...
# (use `sbatch --open-mode=append` or the retry truncates its output file).
# `scancel -b -s TERM` only signals the batch shell; the task then ends with
# whatever the script exits with and is not run again. The node has no GPUs:
# --gpus/--gres=gpu requests are rejected ("Invalid generic resource (gres)
# specification"); Slurm will not configure a GPU without a device File=.
# SLURM_LOCAL_GPUS=N declares N placeholder GPUs backed by /dev/null, so that
# `sbatch --test-only` can check a script that asks for --gpus; nothing can
# compute on them, so use them for --test-only only.
#
# Why each slurm.conf setting is there:
#   ClusterName=gradscope         required; names the state files.
#   SlurmctldHost=<host>(127.0.0.1), NodeName=<host> NodeAddr=127.0.0.1
#                                 the node is this machine, named as slurmd
#                                 sees itself (`hostname`); the explicit
#                                 address avoids depending on DNS / hosts.
#   CPUs=<nproc>                  the real core count, so array tasks with
#                                 --cpus-per-task=1 run <nproc> at a time.
#   RealMemory=<90% of MemTotal>  lets --mem requests be checked; below the
#                                 real size so the node never drains for
#                                 "low RealMemory".
#   SlurmdParameters=config_overrides
#                                 trust this file over what slurmd detects
#                                 (sockets/threads layout), so a topology
#                                 mismatch never drains the only node.
#   SlurmUser=root / SlurmdUser=root
#                                 no slurm-owned directories to set up; the
#                                 tests run as root anyway.
#   AuthType/CredType munge       the only authentication Debian ships ready.
#   ProctrackType=proctrack/pgid  no cgroup setup needed (containers/VMs
#                                 often lack a writable cgroup tree). Not
#                                 proctrack/linuxproc: it finds a job's
#                                 processes by parent pid, so a background
#                                 child orphaned when the batch shell exits
#                                 (e.g. after `scancel -b -s TERM`) escaped and
#                                 kept running after the job ended (measured);
#                                 pgid kills the batch script's process group.
#   TaskPlugin=task/none, JobAcctGatherType=jobacct_gather/none
#                                 likewise: no cgroups, no CPU binding.
#   MailProg=/bin/true            Debian has no /bin/mail; silences an error.
#   SelectType=select/cons_tres, SelectTypeParameters=CR_Core
#                                 allocate single cores, so several tasks of
#                                 one array share the node.
#   ReturnToService=2             a node that was DOWN (e.g. slurmd killed
#                                 and restarted) goes back to IDLE on its own.
#   AccountingStorageType=accounting_storage/none
#                                 no slurmdbd/MySQL; sacct does not work.
#   JobCompType=jobcomp/filetxt   ...so finished jobs (state, exit code) are
#                                 logged to $DIR/jobcomp.log instead.
#   AuthInfo=cred_expire=10       Slurm holds a requeued job (Reason=BeginTime)
#                                 for cred_expire+1 seconds, counted from when
#                                 its old run has finished, before it may run
#                                 again; the default is 120 s, the minimum 5
#                                 (smaller values are rejected and 120 used).
#                                 It is also how long a launch credential stays
#                                 valid, so 10 (not 5) leaves slack on a busy
#                                 2-core machine. Override with
#                                 SLURM_LOCAL_CRED_EXPIRE=5..N.
#   SchedulerParameters=sched_interval=2,bf_interval=1
#                                 once a requeued job's begin time passes,
#                                 nothing event-driven starts it: it waits for
#                                 the periodic main (default 60 s) or backfill
#                                 (default 30 s) pass. Run both often.
#   KillWait=10                   seconds between SIGTERM and SIGKILL when a
#                                 job is cancelled, requeued or times out
#                                 (default 30): a job's TERM handler has 10 s
#                                 to checkpoint; the requeued run's hold only
#                                 starts once the old run is gone.
#   MinJobAge=300                 finished jobs stay visible to squeue /
#                                 scontrol for 5 minutes (the default, kept
#                                 explicitly: tests read exit codes there).
#   SlurmdTimeout=60, SlurmctldTimeout=30 (defaults 300, 120)
#                                 a wedged daemon shows up quickly in tests;
#                                 MessageTimeout=10 is the default, spelled out.
#   PartitionName=debug ... Default=YES MaxTime=INFINITE
#                                 one partition, so sbatch needs no -p.
#   StateSaveLocation, SlurmdSpoolDir, *PidFile, *LogFile
#                                 all inside the state dir.
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/gradscope-slurm}
CONF=$DIR/slurm.conf
CTLD_PID=$DIR/slurmctld.pid
SLURMD_PID=$DIR/slurmd.pid
MUNGED_OURS=$DIR/munged.ours # exists (holding munged's pid) only if we started it
MUNGE_KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge
MUNGE_PIDFILE=$MUNGE_RUN/munged.pid
START_TIMEOUT=${SLURM_LOCAL_TIMEOUT:-30}
CRED_EXPIRE=${SLURM_LOCAL_CRED_EXPIRE:-10}
GPUS=${SLURM_LOCAL_GPUS:-0}

log() { echo "slurm-local: $*" >&2; }
die() { log "$*"; exit 1; }

# pid_alive FILE NAME: the pid in FILE is a live process whose command is NAME.
pid_alive() {
    local file=$1 name=$2 pid
    [[ -s $file ]] || return 1
    pid=$(tr -dc '0-9' <"$file")
    [[ -n $pid ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]]
}

pid_of() { tr -dc '0-9' <"$1"; }

require_tools() {
    local missing=()
    for t in slurmctld slurmd sinfo scontrol; do
        command -v "$t" >/dev/null 2>&1 || missing+=("$t")
    done
    if ((${#missing[@]})); then
        log "missing ${missing[*]}: install the Debian package slurm-wlm (apt-get install -y slurm-wlm munge)"
        exit 2
    fi
    if ! command -v munged >/dev/null 2>&1; then
        log "missing munged: install the Debian package munge (apt-get install -y slurm-wlm munge)"
        exit 2
    fi
}

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (slurmd and munged need it)"
}

ensure_munge() {
    if [[ ! -e $MUNGE_KEY ]]; then
        log "creating $MUNGE_KEY"
        install -d -o munge -g munge -m 0700 /etc/munge
        (umask 077 && dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none)
        chown munge:munge "$MUNGE_KEY"
        chmod 0400 "$MUNGE_KEY"
    fi
    if pid_alive "$MUNGED_OURS" munged; then
        return
    fi
    rm -f "$MUNGED_OURS"
    if pgrep -x munged >/dev/null 2>&1; then
        log "using the munged already running (pid $(pgrep -x munged | head -1)); stop will leave it"
        return
    fi
    # munged wants its socket dir to exist, owned by munge, not world-writable.
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    rm -f "$MUNGE_PIDFILE"
    runuser -u munge -- munged --pid-file="$MUNGE_PIDFILE" \
        || die "munged failed to start; see /var/log/munge/munged.log"
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -s $MUNGE_PIDFILE ]] && pid_alive "$MUNGE_PIDFILE" munged && break
        sleep 0.1
    done
    pid_alive "$MUNGE_PIDFILE" munged || die "munged did not write $MUNGE_PIDFILE"
    cp "$MUNGE_PIDFILE" "$MUNGED_OURS"
    munge -n </dev/null | unmunge >/dev/null || die "munge round trip failed"
    log "started munged (pid $(pid_of "$MUNGED_OURS"))"
}

write_conf() {
    local host cpus mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
    [[ $GPUS =~ ^[0-9]+$ ]] || die "SLURM_LOCAL_GPUS must be a whole number (got '$GPUS')"
    local gres_types="" node_gres=""
    mkdir -p "$DIR"
    rm -f "$DIR/gres.conf"
    if ((GPUS > 0)); then
        # Placeholders for `sbatch --test-only` (see the header): Slurm
        # configures a GPU only with a device file.
        gres_types=$'GresTypes=gpu\n'
        node_gres=" Gres=gpu:$GPUS"
        for ((i = 0; i < GPUS; i++)); do echo "Name=gpu File=/dev/null"; done > "$DIR/gres.conf"
    fi
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
    cat >"$CONF.tmp" <<EOF
# Written by scripts/slurm-local.sh; see its header for why each line is here.
ClusterName=gradscope
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=$CRED_EXPIRE
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/jobcomp.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmdParameters=config_overrides
KillWait=10
MinJobAge=300
MessageTimeout=10
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
${gres_types}NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb${node_gres} Features=local State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    mv "$CONF.tmp" "$CONF"
}

node_state() {
    sinfo -h -N -n "$(hostname -s)" -o '%T' 2>/dev/null | head -1
}

cmd_start() {
    require_tools
    require_root
    [[ $CRED_EXPIRE =~ ^[0-9]+$ ]] && ((CRED_EXPIRE >= 5)) \
        || die "SLURM_LOCAL_CRED_EXPIRE must be an integer >= 5 (got '$CRED_EXPIRE')"
    export SLURM_CONF=$CONF
    if pid_alive "$CTLD_PID" slurmctld && pid_alive "$SLURMD_PID" slurmd; then
        echo "export SLURM_CONF=$CONF"
        return 0
    fi
    mkdir -p "$DIR"
    ensure_munge
    # Rewrite the config only when no daemon of ours is reading it.
    if ! pid_alive "$CTLD_PID" slurmctld && ! pid_alive "$SLURMD_PID" slurmd; then
        write_conf
    fi
    if ! pid_alive "$CTLD_PID" slurmctld; then
        rm -f "$CTLD_PID"
        slurmctld -f "$CONF" || die "slurmctld failed; see $DIR/log/slurmctld.log"
    fi
    if ! pid_alive "$SLURMD_PID" slurmd; then
        rm -f "$SLURMD_PID"
        slurmd -f "$CONF" || die "slurmd failed; see $DIR/log/slurmd.log"
    fi
    local deadline=$((SECONDS + START_TIMEOUT)) state=""
    while ((SECONDS < deadline)); do
        state=$(node_state || true)
        case $state in
            idle | mixed | allocated | completing) break ;;
        esac
        sleep 0.5
    done
    case $state in
        idle | mixed | allocated | completing) ;;
        *)
            log "node not idle after ${START_TIMEOUT}s (state: '${state:-unknown}')"
            tail -n 5 "$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" >&2 || true
            exit 1
            ;;
    esac
    log "cluster up: node $(hostname -s) $state, $(nproc) CPUs"
    echo "export SLURM_CONF=$CONF"
}

# stop_daemon FILE NAME: SIGTERM the pid in FILE if it is NAME; wait up to 15 s, then SIGKILL.
stop_daemon() {
    local file=$1 name=$2 pid i
    if ! pid_alive "$file" "$name"; then
        rm -f "$file"
        return 0
    fi
    pid=$(pid_of "$file")
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) ignored SIGTERM; killing"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$file"
    log "stopped $name (pid $pid)"
}

cmd_stop() {
    local clean=0
    case ${1:-} in
        --clean) clean=1 ;;
        "") ;;
        *) die "usage: $0 stop [--clean]" ;;
    esac
    # Running jobs live in slurmstepd processes that are children of neither
    # daemon and would outlive them, so cancel every job first (only this
    # cluster's: SLURM_CONF points at our controller) and give them KillWait
    # plus a little to go.
    export SLURM_CONF=$CONF
    if pid_alive "$CTLD_PID" slurmctld; then
        local jobs i
        jobs=$(squeue -h -o '%F' 2>/dev/null | sort -u | tr '\n' ' ' || true)
        if [[ -n ${jobs// /} ]]; then
            log "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            for ((i = 0; i < 30; i++)); do
                [[ -z $(squeue -h -t running,completing,configuring -o '%i' 2>/dev/null || true) ]] && break
                sleep 0.5
            done
        fi
    fi
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
    if [[ -e $MUNGED_OURS ]]; then
        stop_daemon "$MUNGED_OURS" munged
        rm -f "$MUNGED_OURS"
    fi
    if ((clean)); then
        [[ -n $DIR && $DIR != / ]] || die "refusing to remove '$DIR'"
        rm -rf -- "$DIR"
        log "removed $DIR"
    fi
}

cmd_status() {
    local rc=0
    export SLURM_CONF=$CONF
    for d in slurmctld slurmd; do
        local f=$DIR/$d.pid
        if pid_alive "$f" "$d"; then
            log "$d running (pid $(pid_of "$f"))"
        else
            log "$d not running"
            rc=1
        fi
    done
    if pid_alive "$MUNGED_OURS" munged; then
        log "munged running (pid $(pid_of "$MUNGED_OURS"), started by us)"
    elif pgrep -x munged >/dev/null 2>&1; then
        log "munged running (not ours)"
    else
        log "munged not running"
        rc=1
    fi
    if ((rc == 0)); then
        sinfo
    fi
    return "$rc"
}

case ${1:-} in
    start) cmd_start ;;
    stop) shift; cmd_stop "$@" ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 start|stop [--clean]|status" >&2
        exit 64
        ;;
esac
