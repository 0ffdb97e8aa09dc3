#pragma once
// One optimisation step of data-parallel training: forward and loss over the
// micro-batches, backward (gradient buckets all-reduced while it runs), unscale and
// clip, the optimizer, then one host all-reduce that agrees on a stop. The loss stays on
// the device (LossMeter): the steady-state step reads nothing back (fp16 excepted: one
// read of the scaler's finite check). With `cuda_graph: true` the step after a few eager
// ones is captured once in a CUDA graph and replayed for every batch of the same shapes.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "config/options.hpp"
#include "device/device.hpp"
#include "dist/reducer.hpp"
#include "engine/build.hpp"
#include "engine/loss_scaler.hpp"
#include "engine/run_state.hpp"
#include "runner/components.hpp"

namespace runner {

/// Why `cuda_graph: true` cannot run with these options, optimizer, device and world size;
/// "" when it can.
std::string cuda_graph_unsupported(const StepOptions& options, torch::optim::Optimizer& optimizer, torch::Device device,
                                   int world_size);

class TrainStep {
 public:
  /// `reducer` is null with one rank.
  TrainStep(const StepOptions& options, torch::Device device, Components& components, GradReducer* reducer,
            Communicator& comm, RunState& run);
  void operator()(Engine& engine, Batch& batch);

  LossScaler& scaler() { return scaler_; }
  /// cuda_graph: steps replayed from the graph and steps run eagerly by this process, and the
  /// iteration the graph was captured at (0: none).
  int64_t graph_replays() const { return graph_replays_; }
  int64_t eager_steps() const { return eager_steps_; }
  int64_t captured_at() const { return captured_at_; }

  /// Eager steps before the capture: the first creates the optimizer's state, the others let
  /// cuDNN's autotuning and the allocator settle (PyTorch's whole-network example takes 3).
  static constexpr int64_t kGraphWarmupSteps = 3;

 private:
  /// The step as LibTorch runs it, one kernel launch after another.
  void eager(Batch& batch);
  /// cuda_graph: records the step on a copy of `batch` (the graph's inputs from then on).
  void capture(Engine& engine, const Batch& batch);
  /// Whether `batch` has the captured batch's fields, shapes, dtypes and device.
  bool fits_graph(const Batch& batch) const;
  void replay(const Batch& batch);
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

  // cuda_graph: true
  std::unique_ptr<device::StepGraph> graph_;
  CapturableOptimizer* capturable_ = nullptr;
  int64_t eager_steps_ = 0;    ///< since the start of this process (a resume warms up again)
  TensorDict static_inputs_;   ///< the graph's batch: a replay's batch is copied into it
  torch::Tensor static_loss_;  ///< the graph's summed loss
  int64_t graph_replays_ = 0, captured_at_ = 0;
};

}  // namespace runner
