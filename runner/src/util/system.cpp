#include "util/system.hpp"

#include <ATen/Parallel.h>
#include <malloc.h>
#include <sched.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "logging/log.hpp"

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

const char* keep_freed_memory() {
  static const char* what = [] {
    const char* tunables = std::getenv("GLIBC_TUNABLES");
    const char* choice = std::getenv("RUNNER_MALLOC");
    if (tunables && std::strstr(tunables, "glibc.malloc")) return "glibc (GLIBC_TUNABLES)";
    if (choice && std::strcmp(choice, "system") == 0) return "glibc defaults (RUNNER_MALLOC=system)";
    // The largest threshold glibc accepts (half its 64 MB arena heaps); setting it also fixes
    // it (no dynamic adjustment), and a trim threshold of 2 GB keeps the heap's top mapped.
    if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1 || mallopt(M_TRIM_THRESHOLD, static_cast<int>(0x7fffffff)) != 1)
      return "glibc defaults (mallopt refused)";
    return "glibc, freed memory kept (mmap threshold 32 MB, no trimming)";
  }();
  return what;
}

#if defined(__SANITIZE_ADDRESS__)
#define RUNNER_NORMAL_EXIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RUNNER_NORMAL_EXIT 1
#endif
#endif

void exit_process(int code) {
  log::flush();
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
#ifdef RUNNER_NORMAL_EXIT
  std::exit(code);
#else
  std::_Exit(code);
#endif
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
