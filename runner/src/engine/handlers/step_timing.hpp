#pragma once
// Completes the loop's time breakdown (StepTimes; the step times its own parts): data wait
// from the engine, and per iteration the time of every handler (its first IterationStarted
// and last IterationCompleted brackets them all: attach() first, attach_last() after the
// other handlers), less the host reads they made.
#include "engine/run_state.hpp"

namespace runner {

class StepTiming : public EngineHandler {
 public:
  explicit StepTiming(RunState& run) : run_(run) {}

  void attach(Engine& engine) override {
    engine.on(Event::IterationStarted, [this](Engine&) {
      t0_ = clock::now();
      reads0_ = device::host_read_seconds();
      parts0_ = run_.times.total();
      counted_reads0_ = run_.times.seconds[StepTimes::HostReads];
    });
  }
  void attach_last(Engine& engine) {
    engine.on(Event::IterationCompleted, [this](Engine& e) {
      StepTimes& t = run_.times;
      const double wall = std::chrono::duration<double>(clock::now() - t0_).count();
      const double in_step = t.total() - parts0_;  // the step's own parts, its reads included
      const double reads = device::host_read_seconds() - reads0_;
      const double reads_in_handlers = reads - (t.seconds[StepTimes::HostReads] - counted_reads0_);
      t.seconds[StepTimes::HostReads] += reads_in_handlers;
      t.seconds[StepTimes::Handlers] += wall - in_step - reads_in_handlers;
      t.seconds[StepTimes::DataWait] = e.state.data_wait_seconds;
    });
  }

 private:
  using clock = RunState::clock;
  RunState& run_;
  clock::time_point t0_;
  double reads0_ = 0, parts0_ = 0, counted_reads0_ = 0;
};

}  // namespace runner
