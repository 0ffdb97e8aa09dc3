#pragma once
// The generic data-parallel training script: build the components a RunConfig names,
// create the run folder, train with validation, and report (engine/trainer.cpp).
#include <map>
#include <string>

#include "config/config.hpp"
#include "device/device.hpp"
#include "dist/communicator.hpp"
#include "registry/registry.hpp"

namespace runner {

struct TrainResult {
  std::string run_dir;
  std::map<std::string, double> final_metrics;  ///< last validation: val/accuracy, ...
  double train_seconds = 0;
  double samples_per_second = 0;  ///< all ranks' samples over the slowest rank's training time
};

/// Thrown (on every rank alike) when a stop signal or max_time ended training after a
/// checkpoint.
struct Stopped {
  int signal;  ///< the signal, or 0 for max_time
};
/// Exit code of a run stopped by SIGTERM/SIGINT/SIGUSR1 or max_time after writing its
/// checkpoint (EX_TEMPFAIL: try again, i.e. resume).
constexpr int kExitStopped = 75;

/// Trains as `config` says. Throws ConfigError for bad input found while building
/// (before any run folder exists) and Error for failures during the run.
/// Collective: every rank of `comm` calls it with the same config. `placement` is
/// this rank's device (device::place).
TrainResult train(const RunConfig& config, const Registry& registry, Communicator& comm,
                  const device::Placement& placement);

}  // namespace runner
