#pragma once
// Failure injection (crash_iteration, for tests and demos), on one rank or all: before
// the step of that iteration (throw, kill or hang), or (crash_mode: validation) inside
// the first validation after it, once its metrics are computed and before they are
// recorded.
#include <signal.h>

#include <chrono>
#include <thread>

#include "engine/handlers/validation.hpp"
#include "runner/error.hpp"

namespace runner {

class FaultInjection : public EngineHandler {
 public:
  FaultInjection(const FaultOptions& options, int rank, Validation& validation) : o_(options), rank_(rank) {
    if (armed() && o_.crash_mode == "validation")
      validation.after_evaluate = [this](const Engine& e) {
        if (e.state.iteration >= *o_.crash_iteration)
          throw Error("crash_iteration: failure injected during the validation after iteration " +
                      std::to_string(e.state.iteration) + " on rank " + std::to_string(rank_));
      };
  }

  void attach(Engine& engine) override {
    if (!armed() || o_.crash_mode == "validation") return;
    engine.on(Event::IterationStarted, [this](Engine& e) {
      if (e.state.iteration == *o_.crash_iteration) crash(e);
    });
  }

 private:
  bool armed() const { return o_.crash_iteration && (o_.crash_rank < 0 || o_.crash_rank == rank_); }

  void crash(const Engine& e) const {
    log::flush();
    if (o_.crash_mode == "kill") raise(SIGKILL);
    if (o_.crash_mode == "hang")
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    throw Error("crash_iteration: failure injected at iteration " + std::to_string(e.state.iteration) + " on rank " +
                std::to_string(rank_));
  }

  const FaultOptions& o_;
  int rank_;
};

}  // namespace runner
