#pragma once
#include <string>

namespace runner {

/// The cores this rank may use: its CPU affinity mask when a launcher bound it to fewer than
/// the node's cores, else the node's cores divided among its `local_size` ranks.
int cores_of_this_rank(int local_size);

/// Sets LibTorch's intra-op threads (OpenMP and MKL) to `requested` (0: cores_of_this_rank(),
/// so ranks sharing a node never oversubscribe it). Never -fopenmp or omp_* here: LibTorch
/// brings its own libgomp, and a second OpenMP runtime would be loaded. Returns the thread
/// count in effect.
int configure_threads(int requested, int local_size);

/// "g++ 12.2.0" or similar.
std::string compiler_version();

}  // namespace runner
