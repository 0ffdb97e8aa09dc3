#pragma once
// One optimisation step of data-parallel training: forward and loss over the
// micro-batches, backward (gradient buckets all-reduced while it runs), unscale and
// clip, the optimizer, then one host all-reduce that agrees on a stop. The loss stays on
// the device (LossMeter): the steady-state step reads nothing back (fp16 excepted: one
// read of the scaler's finite check).
#include <torch/torch.h>

#include <vector>

#include "config/options.hpp"
#include "dist/reducer.hpp"
#include "engine/build.hpp"
#include "engine/loss_scaler.hpp"
#include "engine/run_state.hpp"

namespace runner {

class TrainStep {
 public:
  /// `reducer` is null with one rank.
  TrainStep(const StepOptions& options, torch::Device device, Components& components, GradReducer* reducer,
            Communicator& comm, RunState& run);
  void operator()(Engine& engine, Batch& batch);

  LossScaler& scaler() { return scaler_; }

 private:
  /// Forward, loss and backward of this rank's batch in k micro-batches; the summed
  /// (sample-weighted) loss, on the loss's device.
  torch::Tensor forward_backward(const Batch& batch);
  /// Unscale, clip and step (skipped when fp16 gradients overflowed).
  void apply_gradients();
  /// Any rank's stop request (a signal, max_time), alike on every rank: host values only.
  void agree();

  const StepOptions& options_;
  torch::Device device_;
  Components& c_;
  GradReducer* reducer_;
  Communicator& comm_;
  RunState& run_;
  LossScaler scaler_;  ///< float16 only; its state is checkpointed
};

}  // namespace runner
