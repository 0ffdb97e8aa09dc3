#pragma once
// The learning rate of iteration i (0-based) is the scheduler's, set before its step.
#include "engine/build.hpp"
#include "engine/run_state.hpp"

namespace runner {

class LrSchedule : public EngineHandler {
 public:
  LrSchedule(Scheduler& scheduler, torch::optim::Optimizer& optimizer, RunState& run)
      : scheduler_(scheduler), optimizer_(optimizer), run_(run) {}
  void attach(Engine& engine) override {
    engine.on(Event::IterationStarted, [this](Engine& e) {
      run_.lr = scheduler_.lr(e.state.iteration - 1);
      set_lr(optimizer_, run_.lr);
    });
  }

 private:
  Scheduler& scheduler_;
  torch::optim::Optimizer& optimizer_;
  RunState& run_;
};

}  // namespace runner
