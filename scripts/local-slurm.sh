#!/usr/bin/env bash
# A one-node SLURM cluster on loopback (Debian 12's slurm-wlm 22.05 + munge), for tests and for trying the SLURM
# profile on a laptop. Needs root: the jobstep plugin drops SLURM_CONF inside jobs, so slurm.conf must be the
# compiled-in /etc/slurm/slurm.conf (what was there is backed up and restored by `down`).
#
#   scripts/local-slurm.sh install      apt-get the daemons (slurmctld slurmd slurm-client munge)
#   scripts/local-slurm.sh up [BASE]    start munged, slurmctld, slurmd; wait until the node is idle
#   scripts/local-slurm.sh down [BASE]  stop them by PID, restore /etc/slurm
#
# One node = this machine (NodeAddr 127.0.0.1, its CPU count, 90% of its memory), partition "debug", no cgroups
# (proctrack/linuxproc, task/none), no accounting (the profile must use `slurm-status-command: squeue`), and four
# fake GPUs (symlinks to /dev/null) so gres requests are scheduled for real.
set -euo pipefail
BASE=${2:-${RMFLOW_SLURM_BASE:-/tmp/rmflow-slurm}}
NODE=$(hostname -s)
ETC=/etc/slurm

wait_for() { local n=$(( $1 * 5 )); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge
}

write_config() {
  local cpus mem
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  mkdir -p "$ETC" "$BASE"/{munge,state,spool,log,fakegpu}
  for i in 0 1 2 3; do ln -sf /dev/null "$BASE/fakegpu/nvidia$i"; done
  for f in slurm.conf gres.conf; do
    [ -e "$ETC/$f" ] && [ ! -e "$BASE/$f.orig" ] && cp "$ETC/$f" "$BASE/$f.orig"
  done
  cat > "$ETC/slurm.conf" <<CONF
ClusterName=rmflowlocal
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$BASE/munge/munge.socket.2
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/slurmctld.pid
SlurmdPidFile=$BASE/slurmd.pid
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MinJobAge=300
KillWait=5
GresTypes=gpu
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:4 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
  echo "NodeName=$NODE Name=gpu File=$BASE/fakegpu/nvidia[0-3]" > "$ETC/gres.conf"
}

up() {
  install
  getent hosts "$NODE" | grep -q '^127\.' || echo "warning: $NODE does not resolve to 127.x; slurmd may not connect" >&2
  write_config
  if [ ! -e "$BASE/munge/munge.key" ]; then
    mungekey --create --keyfile="$BASE/munge/munge.key" --bits=1024
  fi
  chmod 755 "$BASE/munge"; chmod 600 "$BASE/munge/munge.key"
  munged --key-file="$BASE/munge/munge.key" --socket="$BASE/munge/munge.socket.2" \
    --pid-file="$BASE/munge/munged.pid" --log-file="$BASE/log/munged.log" --seed-file="$BASE/munge/munged.seed"
  wait_for 20 test -S "$BASE/munge/munge.socket.2" || { echo "munged did not start" >&2; exit 1; }
  slurmctld -D -c > "$BASE/log/slurmctld.out" 2>&1 &
  echo $! > "$BASE/slurmctld.run.pid"
  wait_for 30 scontrol ping || { echo "slurmctld did not start" >&2; tail "$BASE/log/slurmctld.log" >&2; exit 1; }
  slurmd -D -N "$NODE" > "$BASE/log/slurmd.out" 2>&1 &
  echo $! > "$BASE/slurmd.run.pid"
  if ! wait_for 60 bash -c "[ \"\$(sinfo -h -N -n $NODE -o %T)\" = idle ]"; then
    echo "node $NODE never became idle" >&2; sinfo -N >&2 || true; tail "$BASE"/log/*.log >&2; exit 1
  fi
  echo "local SLURM up: node $NODE, partition debug, state in $BASE"
}

stop_pid() {
  local file=$1 pid
  [ -e "$file" ] || return 0
  pid=$(cat "$file"); rm -f "$file"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

down() {
  stop_pid "$BASE/slurmd.run.pid"
  stop_pid "$BASE/slurmctld.run.pid"
  stop_pid "$BASE/munge/munged.pid"
  for f in slurm.conf gres.conf; do
    if [ -e "$BASE/$f.orig" ]; then mv "$BASE/$f.orig" "$ETC/$f"; else rm -f "$ETC/$f"; fi
  done
  echo "local SLURM down"
}

case "${1:-}" in
  install) install ;;
  up) up ;;
  down) down ;;
  *) echo "usage: $0 install|up|down [BASE]" >&2; exit 2 ;;
esac
