#pragma once
// `ema:` updates the weight average after every optimizer step (engine/ema.hpp), before
// the handlers that validate or checkpoint at that iteration.
#include "engine/ema.hpp"
#include "engine/run_state.hpp"

namespace runner {

class EmaUpdate : public EngineHandler {
 public:
  explicit EmaUpdate(Ema& ema) : ema_(ema) {}
  void attach(Engine& engine) override {
    engine.on(Event::IterationCompleted, [this](Engine&) { ema_.update(); });
  }

 private:
  Ema& ema_;
};

}  // namespace runner
