#include "engine/engine.hpp"

#include <chrono>

namespace runner {

void Engine::on(Event event, Handler handler, int64_t every) {
  handlers_.push_back(Slot{event, std::move(handler), std::max<int64_t>(1, every)});
}

void Engine::fire(Event event) {
  for (auto& slot : handlers_) {
    if (slot.event != event) continue;
    const bool per_iteration = event == Event::IterationStarted || event == Event::IterationCompleted;
    const bool per_epoch = event == Event::EpochStarted || event == Event::EpochCompleted;
    const int64_t count = per_iteration ? state.iteration : per_epoch ? state.epoch : 0;
    if (count % slot.every == 0) slot.handler(*this);
  }
}

void Engine::run(BatchSource& data, int64_t max_epochs) {
  using clock = std::chrono::steady_clock;
  state.max_epochs = max_epochs;
  state.epoch_length = data.batches_per_epoch();
  terminate_ = false;
  try {
    fire(Event::Started);
    // Resuming inside an epoch (state restored from a checkpoint): finish that epoch
    // from the next batch, without firing EpochStarted again.
    bool mid_epoch = state.epoch >= 1 && state.epoch_iteration > 0 && state.epoch_iteration < state.epoch_length;
    while ((mid_epoch || state.epoch < max_epochs) && !terminate_) {
      if (mid_epoch) {
        data.start_epoch(state.epoch, state.epoch_iteration);
        mid_epoch = false;
      } else {
        ++state.epoch;
        state.epoch_iteration = 0;
        data.start_epoch(state.epoch);
        fire(Event::EpochStarted);
      }
      for (;;) {
        const auto t0 = clock::now();
        if (!data.next(state.batch)) break;
        state.data_wait_seconds += std::chrono::duration<double>(clock::now() - t0).count();
        ++state.iteration;
        ++state.epoch_iteration;
        fire(Event::IterationStarted);
        process_(*this, state.batch);
        fire(Event::IterationCompleted);
        if (terminate_) break;
      }
      state.batch = Batch();
      fire(Event::EpochCompleted);
    }
    fire(Event::Completed);
  } catch (...) {
    state.error = std::current_exception();
    fire(Event::Exception);
    throw;
  }
}

}  // namespace runner
