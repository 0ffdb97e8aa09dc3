#!/usr/bin/env bash
# Launch agent for mpirun (--mca plm_rsh_agent): where mpirun would `ssh HOST CMD`,
# this runs CMD inside the network namespace that plays HOST, with a hostname of its
# own (a separate UTS namespace) so Open MPI sees two different nodes.
# Hosts are the addresses netns_cluster.sh assigns: 10.213.0.<i> -> namespace runner-node<i>.
set -euo pipefail
while [[ $# -gt 0 && "$1" == -* ]]; do shift; done  # ssh-style options, if any
host=$1
shift
case "$host" in
  10.213.0.*) node=${host##*.} ;;
  *) echo "netns_agent: unknown host '$host' (expected 10.213.0.N)" >&2; exit 255 ;;
esac
exec ip netns exec "runner-node$node" unshare --uts sh -c "hostname runner-node$node && $*"
