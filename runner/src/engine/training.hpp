#pragma once
// The generic data-parallel training script: build the components a RunConfig names,
// create the run folder, train with validation, and report.
#include <map>
#include <string>

#include "config/config.hpp"
#include "dist/communicator.hpp"
#include "registry/registry.hpp"

namespace runner {

struct TrainResult {
  std::string run_dir;
  std::map<std::string, double> final_metrics;  ///< last validation: val/accuracy, ...
  double train_seconds = 0;
  double samples_per_second = 0;     ///< all ranks' samples over the slowest rank's training time
};

/// Trains as `config` says. Throws ConfigError for bad input found while building
/// (before any run folder exists) and Error for failures during the run.
/// Thrown (on every rank alike) when a stop signal ended training after a checkpoint.
struct Stopped {
  int signal;
};
/// Exit code of a run stopped by SIGTERM/SIGINT/SIGUSR1 after writing its checkpoint
/// (EX_TEMPFAIL: try again, i.e. resume).
constexpr int kExitStopped = 75;

/// Collective: every rank of `comm` calls it with the same config.
TrainResult train(const RunConfig& config, const Registry& registry, Communicator& comm);

}  // namespace runner
