#pragma once
// report.html exists from the start (empty curves); Validation refreshes it after each
// validation and the Trainer writes the last one when the run ends.
#include "engine/run_state.hpp"

namespace runner {

class Report : public EngineHandler {
 public:
  explicit Report(RunState& run) : run_(run) {}
  void attach(Engine& engine) override {
    engine.on(Event::Started, [this](Engine& e) { run_.refresh_report(e); });
  }

 private:
  RunState& run_;
};

}  // namespace runner
