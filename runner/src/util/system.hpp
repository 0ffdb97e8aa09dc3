#pragma once
#include <string>

namespace runner {

/// Sets LibTorch's intra-op threads to `requested` (0: the cores of this node divided
/// among its `local_size` ranks) and keeps OpenBLAS's own pool at one thread so it does
/// not compete with OpenMP's (that competition cost up to 10x on a 2-core machine).
/// Returns the thread count in effect.
int configure_threads(int requested, int local_size);

/// "g++ 12.2.0" or similar.
std::string compiler_version();

}  // namespace runner
