#pragma once
// The data-parallel agreements besides gradients: same config on every rank, same
// starting weights, metrics summed over ranks, identical weights at the end.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "config/tree.hpp"
#include "dist/communicator.hpp"
#include "metrics/metrics.hpp"

namespace runner {

/// A failure every rank knows about (decided by a collective): no MPI_Abort needed.
/// Rank 0 reports `message`; every rank exits with `code` after a clean MPI_Finalize.
struct AgreedFailure {
  int code;             ///< 2 for bad input (ConfigError), 1 otherwise
  std::string message;  ///< one line, naming the failing ranks when not all failed
  bool report;          ///< true on rank 0
};

/// Collective: every rank calls it at the same point with its own failure, or null.
/// If no rank failed it returns; otherwise every rank throws AgreedFailure, whose
/// message names the failing ranks and their messages (once when all said the same).
/// With one rank, rethrows `error` as it is.
void agree_on_failure(Communicator& comm, std::exception_ptr error);

/// Collective: runs `fn` on this rank, then agrees on failure (agree_on_failure): if
/// `fn` threw on any rank, every rank throws AgreedFailure (one rank: the error itself).
template <class F>
void collectively(Communicator& comm, F&& fn) {
  std::exception_ptr error;
  try {
    fn();
  } catch (...) {
    error = std::current_exception();
  }
  agree_on_failure(comm, error);
}

/// Compares the resolved config of every rank with rank 0's. A mismatch is a
/// ConfigError on every rank that names the ranks and the differing keys.
void check_same_config(Communicator& comm, const config::Node& resolved);

/// Copies rank `root`'s parameters and/or buffers to every rank.
void broadcast_module(Communicator& comm, torch::nn::Module& module, bool parameters, bool buffers, int root = 0);

/// Replaces each metric's state by the sum of every rank's state.
void reduce_metrics(Communicator& comm, const std::vector<std::shared_ptr<Metric>>& metrics);

/// While alive, runner::nn::BatchNorm2d layers compute their statistics over all ranks.
class SyncBatchNormScope {
 public:
  explicit SyncBatchNormScope(Communicator& comm);
  ~SyncBatchNormScope();
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;
};

/// For `dist.sync_batchnorm: true`: the scope that synchronises `model`'s BatchNorm
/// layers, or null when there is nothing to synchronise (one rank, no such layers).
/// Throws ConfigError (at `where`) if `model` has BatchNorm layers of another class,
/// which would silently stay per rank.
std::unique_ptr<SyncBatchNormScope> enable_sync_batchnorm(Communicator& comm, torch::nn::Module& model,
                                                          const std::string& where);

/// FNV-1a 64 of the bytes of every parameter and buffer, in hex.
std::string module_hash(torch::nn::Module& module);

/// Checks that every rank holds the same weights (module_hash). Throws Error naming
/// the ranks that differ from rank 0; returns the common hash.
std::string check_same_weights(Communicator& comm, torch::nn::Module& module);

}  // namespace runner
