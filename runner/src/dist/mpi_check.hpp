#pragma once
// Every MPI call goes through RUNNER_MPI_CHECK: a failure throws with the call's text.
#include <mpi.h>

#include <string>

#include "runner/error.hpp"

#define RUNNER_MPI_CHECK(call)                                                           \
  do {                                                                                   \
    const int rc_ = (call);                                                              \
    if (rc_ != MPI_SUCCESS) {                                                            \
      char msg_[MPI_MAX_ERROR_STRING];                                                   \
      int len_ = 0;                                                                      \
      MPI_Error_string(rc_, msg_, &len_);                                                \
      throw ::runner::Error(std::string(#call) + " failed: " + std::string(msg_, len_)); \
    }                                                                                    \
  } while (0)
