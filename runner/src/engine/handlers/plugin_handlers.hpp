#pragma once
// The config's `handlers:` (plugin Handlers), after the host's own for each event.
// Each sees a TrainingState and may log values, recorded at that iteration (rank 0).
// A handler runs on rank 0 unless its every_rank() says otherwise. Handlers see the
// current batch loss, so with any handler configured the loss is read at every event
// (one host read per iteration on a GPU).
#include <string>
#include <utility>
#include <vector>

#include "engine/build.hpp"
#include "engine/run_state.hpp"
#include "runner/error.hpp"
#include "util/strings.hpp"

namespace runner {

class PluginHandlers : public EngineHandler {
 public:
  PluginHandlers(std::vector<NamedHandler> handlers, Model& model, RunState& run)
      : handlers_(std::move(handlers)), model_(model), run_(run) {}

  void attach(Engine& engine) override {
    if (handlers_.empty()) return;
    engine.on(Event::Started, [this](Engine& e) { call(e, &Handler::started); });
    engine.on(Event::EpochStarted, [this](Engine& e) { call(e, &Handler::epoch_started); });
    engine.on(Event::IterationCompleted, [this](Engine& e) { call(e, &Handler::iteration_completed); });
    engine.on(Event::EpochCompleted, [this](Engine& e) { call(e, &Handler::epoch_completed); });
    engine.on(Event::Completed, [this](Engine& e) { call(e, &Handler::completed); });
  }

 private:
  TrainingState state_of(const Engine& e, const LossMeter::Values& loss) {
    TrainingState st;
    st.epoch = e.state.epoch;
    st.max_epochs = e.state.max_epochs;
    st.iteration = e.state.iteration;
    st.epoch_iteration = e.state.epoch_iteration;
    st.epoch_length = e.state.epoch_length;
    st.batch_loss = loss.batch_loss;
    st.lr = run_.lr;
    for (const auto& [k, v] : run_.last_val) st.metrics[k] = v;
    st.model = &model_;
    st.run_dir = run_.run_dir;
    st.rank = run_.dist.rank;
    st.world_size = run_.dist.world_size;
    st.log = [this](const std::string& key, double value) { pending_.emplace_back(key, value); };
    return st;
  }

  void call(const Engine& e, void (Handler::*event)(const TrainingState&)) {
    const TrainingState st = state_of(e, run_.read_loss(e));  // every rank: the read is collective
    for (auto& h : handlers_) {
      if (!run_.dist.is_main() && !h.handler->every_rank()) continue;
      try {
        ((*h.handler).*event)(st);
      } catch (const std::exception& ex) {
        throw Error("handler " + h.what + ": " + first_line(ex.what()));
      }
    }
    if (!pending_.empty() && run_.recorder) run_.recorder->log(e.state.iteration, e.state.epoch, pending_);
    pending_.clear();
  }

  std::vector<NamedHandler> handlers_;
  Model& model_;
  RunState& run_;
  std::vector<std::pair<std::string, double>> pending_;  ///< what handlers log for this event
};

}  // namespace runner
