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

/// glibc malloc tuned for a training loop, which frees and reallocates the same large
/// activations every step: blocks up to 32 MB come from the heap and freed memory stays
/// mapped (no trimming), instead of an mmap/munmap and a page fault per 4 KiB each time.
/// Measured on resnet8 (one Fashion-MNIST epoch, 2 cores): 5.8 million minor page faults
/// and 10.3 s of system time become 0.18 million and 0.4 s; the training loop 20.4 s -> 14.7 s;
/// peak RSS +8%. Left alone when GLIBC_TUNABLES sets any glibc.malloc tunable or
/// RUNNER_MALLOC=system. Returns what it did, for the banner.
const char* keep_freed_memory();

/// Ends the process with `code` once `cli::main` has returned: every file, thread, MPI and
/// NCCL resource of the run was closed in its scope by then, so this flushes stdio and the log
/// and leaves with _Exit, skipping the static destructors that follow. Those are LibTorch's
/// operator registry taking itself apart, 0.1 s of every process here (strace of the mlp
/// recipe: 0.14 s from the last line to the exit, 78 ms of it in c10::Dispatcher::cleanup and
/// the deregistration of every kernel). A plugin must therefore not leave output to a static
/// destructor (README, Plugins). Builds with AddressSanitizer exit normally (leak check).
[[noreturn]] void exit_process(int code);

}  // namespace runner
