#!/usr/bin/env bash
# A one-node Slurm on this machine, for tests and trying srun/sbatch recipes: munged,
# slurmctld and slurmd (Debian's slurm-wlm and munge), all as root, with their state, key,
# sockets and logs in one folder; no systemd, no cgroups (proctrack/linuxproc, task/none),
# MpiDefault pmix.
#   tools/slurm/local_cluster.sh up DIR     start it; prints the SLURM_CONF line to export
#   tools/slurm/local_cluster.sh down DIR   stop it
set -euo pipefail
cmd=${1:?usage: local_cluster.sh up|down DIR}
D=$(mkdir -p "${2:?usage: local_cluster.sh up|down DIR}" && cd "$2" && pwd)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

down() {
  for p in slurmd slurmctld munged; do
    [ -s "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2> /dev/null || true
  done
  sleep 0.5
}

up() {
  [ "$(id -u)" -eq 0 ] || { echo "local_cluster.sh: run as root (slurmd starts jobs as their user)" >&2; exit 77; }
  for b in munged slurmctld slurmd srun; do
    command -v "$b" > /dev/null || { echo "local_cluster.sh: $b missing: apt install slurm-wlm munge" >&2; exit 77; }
  done
  chmod 700 "$D"
  mkdir -p "$D/state" "$D/spool"
  [ -s "$D/munge.key" ] || { dd if=/dev/urandom bs=1 count=1024 of="$D/munge.key" status=none; chmod 400 "$D/munge.key"; }
  munged --force --socket="$D/munge.socket" --key-file="$D/munge.key" --pid-file="$D/munged.pid" \
    --log-file="$D/munged.log" --seed-file="$D/munge.seed"
  local host cpus
  host=$(hostname -s)
  cpus=$(nproc)
  cat > "$D/slurm.conf" <<CONF
ClusterName=runnertest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$D/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=30
JobRequeue=1
StateSaveLocation=$D/state
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.pid
SlurmdPidFile=$D/slurmd.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
  export SLURM_CONF=$D/slurm.conf
  slurmctld -i -f "$D/slurm.conf"
  slurmd -f "$D/slurm.conf"
  for _ in $(seq 1 60); do
    sinfo -h -o %t 2> /dev/null | grep -q '^idle' && { echo "export SLURM_CONF=$D/slurm.conf"; return 0; }
    sleep 0.5
  done
  echo "local_cluster.sh: the node did not become idle; logs in $D" >&2
  tail -5 "$D/slurmctld.log" "$D/slurmd.log" >&2 || true
  down
  exit 1
}

case $cmd in
  up) up ;;
  down) down ;;
  *) echo "usage: local_cluster.sh up|down DIR" >&2; exit 2 ;;
esac
