#include <cstdlib>
#include <string>

#include "dist/dist.hpp"
#include "dist/launch.hpp"
#include "dist/mpi_check.hpp"

namespace runner {

bool mpi_initialized() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

void ensure_mpi() {
  int initialized = 0;
  RUNNER_MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized) return;
  // Gradient buckets use MPI_Iallreduce. Open MPI's default choice for it measured
  // at 0.87 GB/s on 100 MB over 2 local ranks, ring at 2.7 GB/s (blocking
  // MPI_Allreduce: 1.5 GB/s); tools/bench/allreduce_bench.cpp. A user's own setting wins.
  setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "ring", /*overwrite=*/0);
  int provided = 0;
  // Serialized: the autograd hooks that launch gradient all-reduces may run on an
  // autograd worker thread while the main thread waits in backward().
  RUNNER_MPI_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided));
  RUNNER_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
}

DistContext::DistContext() {
  const EnvLookup env = [](const char* name) -> const char* { return std::getenv(name); };
  if (started_by_an_mpi_launcher(env)) {
    ensure_mpi();
    RUNNER_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info_.rank));
    RUNNER_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info_.world_size));
    MPI_Comm local;
    RUNNER_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &local));
    RUNNER_MPI_CHECK(MPI_Comm_rank(local, &info_.local_rank));
    RUNNER_MPI_CHECK(MPI_Comm_size(local, &info_.local_size));
    MPI_Comm_free(&local);
  }
  try {
    info_ = detect_launch(info_, env);
  } catch (...) {
    if (mpi_initialized()) MPI_Finalize();
    throw;
  }
}

DistContext::~DistContext() {
  if (mpi_initialized()) MPI_Finalize();
}

void DistContext::abort_all(int code) {
  if (info_.world_size > 1 && info_.launcher == "mpi") MPI_Abort(MPI_COMM_WORLD, code);
  if (mpi_initialized()) MPI_Finalize();
  std::exit(code);
}

}  // namespace runner
