#pragma once
// A small training/evaluation loop that fires events; everything else (validation,
// logging, LR scheduling, progress, checkpoints, the config's plugin handlers) is a
// handler attached with an `every` filter, as in Ignite's Engine.
#include <exception>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "data/loader.hpp"

namespace runner {

enum class Event { Started, EpochStarted, IterationStarted, IterationCompleted, EpochCompleted, Completed, Exception };

struct EngineState {
  int64_t epoch = 0;            ///< 1-based while running
  int64_t iteration = 0;        ///< 1-based, counted across epochs
  int64_t epoch_iteration = 0;  ///< 1-based within the epoch
  int64_t max_epochs = 0;
  int64_t epoch_length = 0;
  Batch batch;
  std::map<std::string, double> output;  ///< what the process function reports (e.g. loss)
  std::exception_ptr error;              ///< set for Event::Exception handlers
  double data_wait_seconds = 0;          ///< time spent waiting for batches
};

class Engine {
 public:
  using Process = std::function<void(Engine&, Batch&)>;
  using Handler = std::function<void(Engine&)>;

  explicit Engine(Process process) : process_(std::move(process)) {}
  /// Calls `handler` on `event`; for iteration events every `every` iterations, for
  /// epoch events every `every` epochs.
  void on(Event event, Handler handler, int64_t every = 1);
  /// Runs epochs [state.epoch + 1, max_epochs] over `data`; if `state` says an epoch is
  /// partly done (restored: epoch_iteration < epoch_length), it first finishes that epoch
  /// from batch epoch_iteration. Exceptions reach the Exception handlers, then propagate.
  void run(BatchSource& data, int64_t max_epochs);
  /// Stops after the current iteration (no further epochs).
  void terminate() { terminate_ = true; }

  EngineState state;

 private:
  void fire(Event event);
  struct Slot {
    Event event;
    Handler handler;
    int64_t every;
  };
  Process process_;
  std::vector<Slot> handlers_;
  bool terminate_ = false;
};

/// A feature of the trainer (engine/handlers/): it attaches its member functions to the
/// events it needs. The trainer's built-in features and the bridge to the config's
/// plugin handlers are all EngineHandlers, wired in one place (Trainer::attach_handlers).
class EngineHandler {
 public:
  virtual ~EngineHandler() = default;
  virtual void attach(Engine& engine) = 0;
};

}  // namespace runner
