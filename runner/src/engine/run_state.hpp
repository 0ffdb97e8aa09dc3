#pragma once
// What the training step and the trainer's handlers share while a run goes on: the
// figures of the last step, the running loss, time and sample counts, the last
// validation, a requested stop, and the run folder's recorder. The Trainer owns it.
#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "device/device.hpp"
#include "dist/communicator.hpp"
#include "engine/engine.hpp"
#include "engine/loss_meter.hpp"
#include "engine/step_times.hpp"
#include "logging/reports.hpp"
#include "metrics/metrics.hpp"
#include "tracking/recorder.hpp"

namespace runner {

struct RunState {
  using clock = std::chrono::steady_clock;

  DistInfo dist;
  Communicator* comm = nullptr;
  device::Placement placement;  ///< where this rank computes
  std::string run_dir;
  tracking::Recorder* recorder = nullptr;  ///< rank 0 only
  Progress progress{false};
  clock::time_point started = clock::now();  ///< when train() began (max_time counts from here)

  // The last step, as every rank agreed on it.
  double lr = 0;
  LossMeter loss;                 ///< the steps' losses, on the device until read_loss(); loss.values() as of then
  int64_t samples = 0;            ///< this rank's training samples so far
  double train_seconds = 0;       ///< time in training epochs (validation excluded)
  StepTimes times;                ///< where train_seconds went, by part
  double validation_seconds = 0;  ///< time in validations (val, train_eval, val_ema)
  std::vector<std::pair<std::string, double>> last_val;  ///< the last validation's metrics

  // A stop after this iteration: set by the step from what every rank requested.
  bool stop_requested = false;  ///< this rank asks for a stop (max_time); read by the step
  int stop_signal = 0;          ///< SIGTERM, SIGINT or SIGUSR1 that stopped the run, or 0
  bool time_up = false;         ///< max_time stopped the run
  bool stopping() const { return stop_signal != 0 || time_up; }
  std::string stop_reason() const {
    if (time_up && !stop_signal) return "max_time";
    return stop_signal == SIGINT ? "SIGINT" : stop_signal == SIGUSR1 ? "SIGUSR1" : "SIGTERM";
  }

  /// The facts report.html and the final summary show (the Trainer provides them).
  std::function<tracking::Facts(const Engine&)> facts;
  /// Redraws report.html and metrics.csv (rank 0).
  void refresh_report(const Engine& e) const {
    if (!recorder) return;
    recorder->step_parts(times.parts());
    recorder->refresh(facts(e));
  }
  /// The batch loss and running average up to this iteration (one host read when steps
  /// were added since the last; fails the run if a loss was not finite). Collective:
  /// every rank calls it at the same iterations.
  const LossMeter::Values& read_loss(const Engine& e) { return loss.read(*comm, e.state.iteration, e.state.epoch); }
  double seconds_since_start() const { return std::chrono::duration<double>(clock::now() - started).count(); }
};

}  // namespace runner
