#pragma once
// Checkpoints every checkpoint_every iterations (not on an epoch's last, whose
// end-of-epoch checkpoint follows its validation) and at every epoch end; on a stop
// (SIGTERM, SIGINT, SIGUSR1, max_time) a checkpoint after the iteration (after the epoch's
// validation when it was the epoch's last), then Stopped (exit kExitStopped) on every rank alike.
#include <functional>
#include <optional>
#include <string>

#include "engine/run_state.hpp"
#include "engine/signals.hpp"
#include "engine/trainer.hpp"
#include "logging/log.hpp"

namespace runner {

class Checkpoints : public EngineHandler {
 public:
  using Save = std::function<std::string(const Engine&)>;  ///< collective; the path on rank 0
  Checkpoints(std::optional<int64_t> every, Save save, RunState& run)
      : every_(every), save_(std::move(save)), run_(run) {}

  void attach(Engine& engine) override {
    if (every_)
      engine.on(Event::IterationCompleted, [this](Engine& e) {
        if (e.state.iteration % *every_ == 0 && e.state.epoch_iteration != e.state.epoch_length) save_(e);
      });
    engine.on(Event::EpochCompleted, [this](Engine& e) {
      const std::string path = save_(e);
      if (run_.stopping() && e.state.epoch < e.state.max_epochs) stop(e, path);
    });
    // A stop on an epoch's last iteration waits for the epoch's validation and checkpoint
    // (EpochCompleted, above): the resumed run starts the next epoch and skips nothing.
    engine.on(Event::IterationCompleted, [this](Engine& e) {
      if (run_.stopping() && e.state.epoch_iteration != e.state.epoch_length) stop(e, save_(e));
    });
  }

 private:
  [[noreturn]] void stop(const Engine& e, const std::string& path) {
    run_.progress.clear();
    if (run_.dist.is_main())
      RLOG_WARN("stopped by {} after iteration {} (epoch {}); checkpoint {}; continue with resume_from={}",
                run_.stop_reason(), e.state.iteration, e.state.epoch, path, run_.run_dir);
    throw Stopped{run_.stop_signal};
  }

  std::optional<int64_t> every_;
  Save save_;
  RunState& run_;
  SignalScope signals_;  ///< stop signals are caught while training
};

}  // namespace runner
