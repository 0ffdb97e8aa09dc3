#pragma once
// Which launcher started this process, read from its environment. mpirun and srun
// --mpi=pmix make an MPI world; torchrun sets RANK, WORLD_SIZE, MASTER_ADDR and
// MASTER_PORT and leaves every process an MPI singleton, so its ranks meet over c10d's
// TCPStore instead (dist/gloo_backend.cpp). Anything else that started N copies (srun
// without an MPI plugin, another MPI's mpiexec) is refused: N copies would train N
// separate models into N run folders.
#include <functional>
#include <string>

#include "dist/dist.hpp"

namespace runner {

using EnvLookup = std::function<const char*(const char*)>;

/// Whether an MPI launcher's (or Slurm's) variables are set: mpirun, srun, a PMI launcher
/// started this process as one of several, so MPI must start at once (DistContext); else
/// nothing needs MPI until a backend asks for it.
bool started_by_an_mpi_launcher(const EnvLookup& env);

/// The rank layout of this process. `mpi` is what MPI_COMM_WORLD says (world size 1
/// when no MPI launcher started it). Throws ConfigError, one line saying how to launch,
/// when the environment says the job has several processes that MPI does not join.
DistInfo detect_launch(const DistInfo& mpi, const EnvLookup& env);

/// Where torchrun's store is: MASTER_ADDR, MASTER_PORT, and whether torchrun's agent
/// hosts it (TORCHELASTIC_USE_AGENT_STORE=True) or rank 0 must.
struct StoreAddress {
  std::string host;
  int port = 0;
  bool agent_hosts_it = false;
};
StoreAddress torchrun_store(const EnvLookup& env);

}  // namespace runner
