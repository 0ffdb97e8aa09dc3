#!/usr/bin/env bash
# A two-"node" cluster on one machine, for testing mpirun across hosts over TCP:
# two network namespaces joined by a veth pair (10.213.0.1 and 10.213.0.2), and an
# mpirun launch agent (netns_agent.sh) that enters a namespace instead of ssh.
# Needs root and iproute2 (`ip netns`).
#
#   tools/dist/netns_cluster.sh up                 # create the namespaces
#   tools/dist/netns_cluster.sh run -np 2 runner CONFIG [key=value ...]
#                                                  # mpirun with one rank per "node"
#   tools/dist/netns_cluster.sh down               # remove them
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

up() {
  down 2>/dev/null || true
  for i in 1 2; do
    ip netns add "runner-node$i"
    ip -n "runner-node$i" link set lo up
  done
  ip link add runner-veth1 type veth peer name runner-veth2
  for i in 1 2; do
    ip link set "runner-veth$i" netns "runner-node$i"
    ip -n "runner-node$i" addr add "10.213.0.$i/24" dev "runner-veth$i"
    ip -n "runner-node$i" link set "runner-veth$i" up
  done
  ip -n runner-node1 link show runner-veth1 | grep -q "state UP\|LOWERLAYERUP\|UP" || { echo "netns_cluster: veth not up" >&2; exit 1; }
}

down() {
  for i in 1 2; do ip netns del "runner-node$i" 2>/dev/null || true; done
}

run() {
  # mpirun itself lives on node 1; node 2 is reached through the agent. Both the
  # runtime (oob) and MPI traffic (btl) use TCP over the veth pair only.
  exec ip netns exec runner-node1 unshare --uts sh -c 'hostname runner-node1 && exec "$@"' sh \
    mpirun --allow-run-as-root --oversubscribe \
    -H 10.213.0.1:1,10.213.0.2:1 \
    --mca plm_rsh_agent "$here/netns_agent.sh" \
    --mca btl tcp,self --mca btl_tcp_if_include 10.213.0.0/24 --mca oob_tcp_if_include 10.213.0.0/24 \
    "$@"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  run) shift; run "$@" ;;
  *) echo "usage: $0 up | run MPIRUN_ARGS... | down" >&2; exit 2 ;;
esac
