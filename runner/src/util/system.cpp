#include "util/system.hpp"

#include <ATen/Parallel.h>
#include <sched.h>

#include <algorithm>
#include <thread>

namespace runner {

int cores_of_this_rank(int local_size) {
  const int online = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cpu_set_t set;
  CPU_ZERO(&set);
  const int allowed = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : online;
  // Bound by the launcher (mpirun --bind-to core, srun --cpu-bind, taskset): the mask is this
  // rank's share. Unbound (every core allowed): share the node with the other local ranks.
  if (allowed < online) return std::max(1, allowed);
  return std::max(1, online / std::max(1, local_size));
}

int configure_threads(int requested, int local_size) {
  const int n = requested > 0 ? requested : cores_of_this_rank(local_size);
  at::set_num_threads(n);
  return n;
}

std::string compiler_version() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return "g++ " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
         std::to_string(__GNUC_PATCHLEVEL__);
#else
  return "unknown compiler";
#endif
}

}  // namespace runner
