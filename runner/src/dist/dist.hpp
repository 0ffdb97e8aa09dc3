#pragma once
// Process bootstrap over MPI. Every runner process is an MPI process: started
// alone it is a singleton (world size 1); under mpirun/srun it is one of N ranks.
#include <string>

namespace runner {

struct DistInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  ///< rank among the processes of this node
  int local_size = 1;
  std::string backend = "mpi";
  bool is_main() const { return rank == 0; }
};

/// Exit code of a job whose collective watchdog gave up on a peer (dist.timeout).
constexpr int kExitWatchdog = 3;

/// MPI_Init_thread once per process; MPI_Finalize when destroyed.
class DistContext {
 public:
  DistContext(int* argc, char*** argv);
  ~DistContext();
  DistContext(const DistContext&) = delete;
  DistContext& operator=(const DistContext&) = delete;
  const DistInfo& info() const { return info_; }
  /// Ends every rank at once after a fatal error on this one (no hang): MPI_Abort
  /// when the world has more than one rank, a plain exit code otherwise.
  [[noreturn]] void abort_all(int code);

 private:
  DistInfo info_;
};

}  // namespace runner
