#!/usr/bin/env bash
# A throw-away one-node Slurm cluster for the `slurm` tests.
#
#   slurm_cluster.sh start STATEDIR   install Slurm and munge if missing (apt-get), start munged
#                                     (unless one already answers), slurmctld and slurmd with a
#                                     slurm.conf in STATEDIR, wait until the node is idle
#   slurm_cluster.sh install          only install the packages (as root; what .ci/run does)
#   slurm_cluster.sh stop STATEDIR    scancel every job of this cluster, kill only the daemons
#                                     `start` started (their PIDs are in STATEDIR), remove STATEDIR
#
# Clients reach the cluster with SLURM_CONF=STATEDIR/slurm.conf. Everything the daemons write
# (state, spool, logs, pid files) lives in STATEDIR; the ports are US_SLURM_PORT (default 16817)
# and the next one. Needs root (slurmd runs the jobs as their users).
set -euo pipefail

cmd=${1:-}
state=${2:-}
[[ -n $cmd && ( -n $state || $cmd == install ) ]] || { echo "usage: $0 start|stop STATEDIR | install" >&2; exit 2; }
log() { echo "slurm_cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

stop() {
  [[ -d $state ]] || return 0
  if [[ -f $state/slurm.conf ]] && command -v scancel >/dev/null; then
    SLURM_CONF=$state/slurm.conf timeout 10 scancel --quiet --user=root 2>/dev/null || true
    # Let slurmd deliver the cancellation before it goes (stopping slurmd does not end jobs).
    for _ in $(seq 50); do
      [[ -z $(SLURM_CONF=$state/slurm.conf timeout 5 squeue -h -o %i 2>/dev/null) ]] && break
      sleep 0.1
    done
  fi
  # Only the daemons `start` started; all at once (each takes 1-2 s to exit on SIGTERM).
  local pids=() pid name
  for name in slurmd slurmctld munged; do
    [[ -f $state/$name.started-pid ]] || continue
    pid=$(cat "$state/$name.started-pid")
    # Still that daemon (a stale file from a crashed run may name a reused PID)?
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] || continue
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  # Exited is enough: a zombie (not reaped yet by PID 1, as in containers) counts as gone.
  running() { [[ -r /proc/$1/stat && $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) != Z ]]; }
  for _ in $(seq 100); do
    local alive=0
    for pid in "${pids[@]}"; do running "$pid" && alive=1; done
    ((alive)) || break
    sleep 0.05
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$state"
}

install() {
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null ||
     ! command -v munged >/dev/null; then
    log "installing slurmctld slurmd slurm-client munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends \
        slurmctld slurmd slurm-client munge; } \
      >"${TMPDIR:-/tmp}/underspec-slurm-apt.log" 2>&1 ||
      die "apt-get could not install Slurm (see ${TMPDIR:-/tmp}/underspec-slurm-apt.log); no network? Set UNDERSPEC_SKIP_SLURM_TESTS=1 to skip the slurm tests"
  fi
}

start() {
  [[ $(id -u) == 0 ]] || die "must run as root (slurmd runs jobs as their users); set UNDERSPEC_SKIP_SLURM_TESTS=1 to skip the slurm tests"
  install
  stop  # leftovers of an earlier run in the same STATEDIR
  mkdir -p "$state"
  chmod 755 "$state"

  # munge: reuse a working daemon, else start one with a fresh key.
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    local key=/etc/munge/munge.key
    if [[ ! -s $key ]]; then
      mkdir -p /etc/munge
      mungekey --create --keyfile="$key" || die "mungekey failed"
    fi
    chown munge:munge "$key" && chmod 0400 "$key"
    rm -rf /run/munge && mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge && chmod 0755 /run/munge
    setpriv --reuid=munge --regid=munge --init-groups munged --force --foreground --key-file="$key" \
      >"$state/munged.log" 2>&1 &
    echo $! >"$state/munged.started-pid"
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null 2>&1 || die "munged did not start (see $state/munged.log)"
  fi

  local port=${US_SLURM_PORT:-16817} host cpus mem
  host=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ { print int($2 / 1024 / 2) }' /proc/meminfo)
  mkdir -p "$state/ctld" "$state/spool"
  cat >"$state/slurm.conf" <<CONF
# One-node test cluster (tests/slurm/slurm_cluster.sh).
ClusterName=underspec-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire + 1 s before it may start again (default 120 s).
AuthInfo=cred_expire=5
CredType=cred/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_interval=1
DependencyParameters=kill_invalid_depend
MailProg=/bin/true
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=600
KillWait=5
NodeName=usnode NodeHostname=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=usnode Default=YES MaxTime=INFINITE State=UP
CONF
  # slurmd sets up cgroups even with the plugins above. Under cgroup v2 it asks systemd (over
  # D-Bus) for its scope; where there is no systemd or D-Bus (a container, a CI runner), it
  # prepares the hierarchy itself instead of failing to start.
  cat >"$state/cgroup.conf" <<CONF
CgroupPlugin=autodetect
IgnoreSystemdOnFailure=yes
CONF
  export SLURM_CONF=$state/slurm.conf
  # A controller that answers on this port already is not ours (a cluster an interrupted run
  # left, another checkout's tests): ours could not bind and would exit, the tests would run on
  # that one, and `stop` would leave it running. Refuse, starting nothing (no `stop`: its
  # scancel would reach that cluster's jobs).
  if timeout 5 scontrol ping 2>/dev/null | grep -q ' is UP'; then
    rm -rf "$state"
    die "a slurmctld that this script did not start answers on port $port (another test cluster?); stop it, or set US_SLURM_PORT to a free port"
  fi
  slurmctld -D -i -f "$SLURM_CONF" >>"$state/slurmctld.out" 2>&1 &
  echo $! >"$state/slurmctld.started-pid"
  slurmd -D -N usnode -f "$SLURM_CONF" >>"$state/slurmd.out" 2>&1 &
  echo $! >"$state/slurmd.started-pid"
  for _ in $(seq 150); do
    [[ $(sinfo -h -n usnode -o %t 2>/dev/null) == idle ]] && { log "node idle (SLURM_CONF=$SLURM_CONF)"; return 0; }
    sleep 0.1
  done
  log "the node did not become idle in 15 s; slurmctld.log:"
  tail -n 20 "$state/slurmctld.log" >&2 || true
  tail -n 20 "$state/slurmd.log" >&2 || true
  stop
  exit 1
}

case $cmd in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop STATEDIR" >&2; exit 2 ;;
esac
