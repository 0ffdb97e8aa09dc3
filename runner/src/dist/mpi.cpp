#include <mpi.h>

#include <cstdlib>
#include <string>

#include "dist/dist.hpp"
#include "runner/error.hpp"

// Every MPI call goes through this: a failure throws with the operation's name.
#define RUNNER_MPI_CHECK(call)                                                        \
  do {                                                                                \
    const int rc_ = (call);                                                           \
    if (rc_ != MPI_SUCCESS) {                                                         \
      char msg_[MPI_MAX_ERROR_STRING];                                                \
      int len_ = 0;                                                                   \
      MPI_Error_string(rc_, msg_, &len_);                                             \
      throw ::runner::Error(std::string(#call) + " failed: " + std::string(msg_, len_)); \
    }                                                                                 \
  } while (0)

namespace runner {

DistContext::DistContext(int* argc, char*** argv) {
  int initialized = 0;
  RUNNER_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    RUNNER_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  }
  RUNNER_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  RUNNER_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info_.rank));
  RUNNER_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info_.world_size));
  MPI_Comm local;
  RUNNER_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &local));
  RUNNER_MPI_CHECK(MPI_Comm_rank(local, &info_.local_rank));
  RUNNER_MPI_CHECK(MPI_Comm_size(local, &info_.local_size));
  MPI_Comm_free(&local);
}

DistContext::~DistContext() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void DistContext::abort_all(int code) {
  if (info_.world_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  MPI_Finalize();
  std::exit(code);
}

}  // namespace runner
