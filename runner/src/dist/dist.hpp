#pragma once
// Process bootstrap. Under mpirun/srun a runner process is one of N MPI ranks. Started
// alone it has world size 1 and initialises MPI only if something asks for it
// (ensure_mpi: dist.backend mpi), since Open MPI's singleton start-up (it launches an
// orted) costs about 0.3 s. Under torchrun the world comes from torchrun's environment
// (dist/launch.hpp); its ranks meet over c10d's TCPStore and Gloo.
#include <string>

namespace runner {

struct DistInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  ///< rank among the processes of this node
  int local_size = 1;
  std::string backend = "mpi";
  std::string launcher = "mpi";  ///< mpi (mpirun, srun, or alone) | torchrun
  int restart = 0;               ///< TORCHELASTIC_RESTART_COUNT or SLURM_RESTART_COUNT: > 0 continues the run
  std::string launch_id;         ///< the same on every attempt of one job (rank 0's counts); empty: none
  bool is_main() const { return rank == 0; }
};

/// Exit code of a job whose collective watchdog gave up on a peer (dist.timeout).
constexpr int kExitWatchdog = 3;

/// MPI_Init_thread (MPI_THREAD_SERIALIZED, errors returned) unless MPI is initialised
/// already; every MPI use goes after it.
void ensure_mpi();
/// Initialised and not finalised.
bool mpi_initialized();

/// The launch (detect_launch), with MPI initialised first when an MPI launcher started
/// this process; MPI_Finalize when destroyed, if MPI was initialised. Throws ConfigError
/// (after MPI_Finalize) for a launch it refuses.
class DistContext {
 public:
  DistContext();
  ~DistContext();
  DistContext(const DistContext&) = delete;
  DistContext& operator=(const DistContext&) = delete;
  const DistInfo& info() const { return info_; }
  /// Ends every rank at once after a fatal error on this one (no hang): MPI_Abort
  /// when MPI's world has more than one rank, a plain exit code otherwise (torchrun's
  /// agent then stops the other ranks).
  [[noreturn]] void abort_all(int code);

 private:
  DistInfo info_;
};

}  // namespace runner
