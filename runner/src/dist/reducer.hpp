#pragma once
// Data-parallel gradient averaging, as PyTorch's DistributedDataParallel does it:
// parameters are grouped into buckets (reverse registration order, which is roughly
// the order backward produces their gradients), each parameter's .grad is a view into
// its bucket's flat buffer, and a post-hook on each parameter's gradient accumulator
// launches a bucket's all-reduce as soon as all its gradients exist, so communication
// overlaps the rest of backward. Buckets are launched strictly in index order on every
// rank (collectives must match), and finish() launches whatever backward did not
// reach (parameters unused in this iteration contribute zeros, never a hang).
//
// Weighting: each rank scales its gradients by its share of the global batch
// (local samples / global samples) before the sum, so the result is the gradient of
// the mean loss over the whole global batch even when ranks hold different numbers of
// samples. This assumes the criterion averages over the batch (reduction "mean").
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "dist/communicator.hpp"

namespace runner {

class GradReducer {
 public:
  /// `params`: the trainable parameters (requires_grad), in the model's order.
  GradReducer(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;

  /// Before forward: zero the buckets (unless accumulating), point every .grad at its
  /// bucket view, and arm the hooks. `weight` is this rank's share of the global batch;
  /// `sync` false accumulates locally without communicating (gradient accumulation).
  void prepare(double weight, bool sync = true, bool zero = true);
  /// After backward: launch the remaining buckets, wait for all. Gradients are then
  /// identical on every rank.
  void finish();

  size_t num_buckets() const { return buckets_.size(); }
  /// Seconds spent blocked in finish() waiting for all-reduces (cumulative).
  double wait_seconds() const { return wait_seconds_; }
  /// Buckets launched from a hook during backward (cumulative), i.e. overlapped.
  int64_t launched_in_backward() const { return launched_in_backward_; }
  /// Buckets launched in all, by this process (cumulative: a resumed run counts from the resume).
  int64_t launched() const { return launched_; }

 private:
  struct Slot {
    size_t bucket;
    torch::Tensor view;  ///< the parameter-shaped view of the bucket's buffer
    bool ready = false;
  };
  struct Bucket {
    torch::Tensor flat;
    std::vector<size_t> params;
    size_t pending = 0;
    std::unique_ptr<Work> work;
  };
  void on_grad_ready(size_t param);
  void launch_ready_in_order(bool from_hook);
  void launch(Bucket& b);

  std::vector<torch::Tensor> params_;
  Communicator& comm_;
  std::vector<Slot> slots_;
  std::vector<Bucket> buckets_;
  size_t next_launch_ = 0;
  bool armed_ = false, sync_ = true;
  double weight_ = 1;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  ///< kept alive: they hold our hooks
  std::vector<uintptr_t> hook_keys_;
  double wait_seconds_ = 0;
  int64_t launched_in_backward_ = 0, launched_ = 0;
};

}  // namespace runner
