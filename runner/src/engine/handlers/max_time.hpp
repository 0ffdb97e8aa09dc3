#pragma once
// max_time: a wall-clock budget for this process (e.g. a scheduler's time limit). Once
// it is spent, the run asks for a stop: every rank finishes the iteration, checkpoints
// (handlers/checkpoints.hpp), writes its reports and exits 75, as after SIGTERM; a
// later `resume_from=auto` continues the run.
#include "engine/run_state.hpp"
#include "logging/log.hpp"

namespace runner {

class MaxTime : public EngineHandler {
 public:
  MaxTime(double seconds, std::string text, RunState& run) : seconds_(seconds), text_(std::move(text)), run_(run) {}

  void attach(Engine& engine) override {
    if (seconds_ <= 0) return;
    engine.on(Event::IterationStarted, [this](Engine& e) {
      if (run_.stop_requested || run_.seconds_since_start() < seconds_) return;
      run_.stop_requested = true;  // the step agrees on it with every rank
      RLOG_INFO("max_time: {} reached at iteration {}: stopping after it", text_, e.state.iteration);
    });
  }

 private:
  double seconds_;
  std::string text_;
  RunState& run_;
};

}  // namespace runner
