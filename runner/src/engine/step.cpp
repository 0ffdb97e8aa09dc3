#include "engine/step.hpp"

#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>

#include <chrono>
#include <csignal>
#include <optional>

#include "dist/sync.hpp"
#include "engine/precision.hpp"
#include "engine/signals.hpp"
#include "logging/log.hpp"
#include "runner/error.hpp"

namespace runner {

namespace {
// torch::nn::utils::clip_grad_norm_ without its host read of the norm: the norm and the
// coefficient stay on the device (multi-tensor kernels, as torch.nn.utils does).
void clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& p : params)
    if (p.grad().defined()) grads.push_back(p.mutable_grad());
  if (grads.empty()) return;
  const std::vector<torch::Tensor> norms = at::_foreach_norm(grads, 2);
  const torch::Tensor total = torch::linalg_vector_norm(torch::stack(norms).to(torch::kFloat32), 2);
  const torch::Tensor coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  at::_foreach_mul_(grads, coef);
}
}  // namespace

std::string cuda_graph_unsupported(const StepOptions& options, torch::optim::Optimizer& optimizer, torch::Device device,
                                   int world_size) {
  if (world_size > 1)
    return "one process only: this run has " + std::to_string(world_size) +
           " ranks (a graph that holds the gradient all-reduce is not supported yet)";
  if (options.grad_accumulation_steps > 1)
    return "not with grad_accumulation_steps: " + std::to_string(options.grad_accumulation_steps) +
           " (one forward and backward per step)";
  if (options.amp == "fp16")
    return "not with amp: fp16, whose loss scaler reads the device every step (bf16 needs no scaler)";
  if (!device.is_cuda()) return "needs a CUDA device; this run computes on the CPU";
  if (!dynamic_cast<CapturableOptimizer*>(&optimizer))
    return "the optimizer's step cannot be captured: it must read its learning rate from a device tensor "
           "(runner::CapturableOptimizer), as the built-in sgd, adam and adamw do with fused kernels (fused: true, "
           "the default on CUDA)";
  return "";
}

TrainStep::TrainStep(const StepOptions& options, torch::Device device, Components& components, GradReducer* reducer,
                     Communicator& comm, RunState& run)
    : options_(options),
      device_(device),
      c_(components),
      reducer_(reducer),
      comm_(comm),
      run_(run),
      scaler_(options.amp == "fp16", device) {
  if (!options.cuda_graph) return;  // checked by cuda_graph_unsupported before training
  capturable_ = dynamic_cast<CapturableOptimizer*>(c_.optimizer.get());
  if (!capturable_) throw Error("cuda_graph: the optimizer is not a CapturableOptimizer");
  capturable_->lr_from_tensors();
  graph_ = device::make_step_graph(run_.placement);
}

void TrainStep::operator()(Engine& engine, Batch& batch) {
  if (graph_) {
    StepTimes::Scope t(run_.times, StepTimes::Optimizer);
    capturable_->refresh_lr();  // the scheduler's rate, into the optimizer's tensors
  }
  if (graph_ && !graph_->captured() && eager_steps_ >= kGraphWarmupSteps && batch.global_size == c_.dataflow.batch_size)
    capture(engine, batch);  // a full batch after the warm-up: recorded, then replayed below
  if (graph_ && graph_->captured() && fits_graph(batch)) {
    replay(batch);
  } else {
    // An epoch's smaller last batch: shapes met once an epoch, not worth autotuning.
    std::optional<device::NoAutotune> untuned;
    if (batch.global_size < c_.dataflow.batch_size) untuned.emplace();
    eager(batch);
  }
  {
    StepTimes::Scope t(run_.times, StepTimes::CommWait);
    agree();
  }
  run_.samples += batch.size();
}

void TrainStep::eager(Batch& batch) {
  if (!reducer_) {
    StepTimes::Scope t(run_.times, StepTimes::Optimizer);
    // After a capture the gradients are the graph's buffers: zeroed and accumulated into
    // (0 + g = g), they stay the tensors every later replay writes and p.grad() names.
    c_.optimizer->zero_grad(/*set_to_none=*/!(graph_ && graph_->captured()));
  }
  const torch::Tensor loss_sum = forward_backward(batch);
  if (reducer_) {
    StepTimes::Scope t(run_.times, StepTimes::CommWait);
    reducer_->finish();
  }
  {
    StepTimes::Scope t(run_.times, StepTimes::Optimizer);
    apply_gradients();
    run_.loss.add(loss_sum.defined() ? loss_sum : torch::zeros({}, torch::dtype(torch::kFloat64).device(device_)),
                  batch.global_size);
  }
  ++eager_steps_;
}

bool TrainStep::fits_graph(const Batch& batch) const {
  if (batch.data.size() != static_inputs_.size()) return false;
  for (const auto& [name, t] : batch.data) {
    const auto it = static_inputs_.find(name);
    if (it == static_inputs_.end() || it->second.sizes() != t.sizes() || it->second.dtype() != t.dtype() ||
        it->second.device() != t.device())
      return false;
  }
  return true;
}

// The step's kernels recorded once on a copy of this batch (nothing runs: replay() then runs
// this iteration). Gradients are set to none first, so the captured backward makes them in
// the graph's memory, where every replay writes them again.
void TrainStep::capture(Engine& engine, const Batch& batch) {
  Batch fixed;
  fixed.global_size = batch.global_size;
  for (const auto& [name, t] : batch.data) fixed.data.emplace(name, t.clone());
  static_inputs_ = fixed.data;
  c_.optimizer->zero_grad(/*set_to_none=*/true);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    graph_->capture([&] {
      static_loss_ = forward_backward(fixed);
      apply_gradients();
    });
  } catch (const std::exception& e) {
    throw Error("cuda_graph: the training step cannot be captured in a CUDA graph (" + std::string(e.what()) +
                "); run with cuda_graph: false");
  }
  captured_at_ = engine.state.iteration;
  RLOG_INFO("cuda_graph: the step captured at iteration {} after {} eager steps ({:.0f} ms); full batches replay it",
            captured_at_, eager_steps_,
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
}

// One launch for the whole step; the host clock sees only the launch, the device's time shows
// where the host next waits (README, Performance).
void TrainStep::replay(const Batch& batch) {
  StepTimes::Scope t(run_.times, StepTimes::Forward);
  for (auto& [name, input] : static_inputs_) input.copy_(batch.data.at(name), /*non_blocking=*/true);
  graph_->replay();
  run_.loss.add(static_loss_, batch.global_size);
  ++graph_replays_;
}

// k micro-batches of this rank's batch; their gradients add up to the gradient of the
// batch's mean loss. This rank's share of the global batch weights its gradient (see
// GradReducer), which communicates once, during the last micro-batch's backward.
torch::Tensor TrainStep::forward_backward(const Batch& batch) {
  const int64_t n = batch.size();
  const int64_t k = options_.grad_accumulation_steps;
  const double share = static_cast<double>(n) / static_cast<double>(batch.global_size);
  torch::Tensor loss_sum;  // summed on the loss's device, never read here
  for (int64_t m = 0; m < k; ++m) {
    const int64_t lo = n * m / k, hi = n * (m + 1) / k;
    if (reducer_) {  // zeroes the gradient buckets, as zero_grad() does
      StepTimes::Scope t(run_.times, StepTimes::Optimizer);
      reducer_->prepare(share, /*sync=*/m == k - 1, /*zero=*/m == 0);
    }
    if (hi == lo) continue;
    torch::Tensor loss;
    {
      StepTimes::Scope t(run_.times, StepTimes::Forward);
      const TensorDict micro = model_inputs(batch.data, lo, hi, options_.channels_last);
      TensorDict outputs;
      {
        AutocastScope autocast(options_.amp, device_);
        outputs = c_.model->forward_batch(micro);
      }
      loss = c_.criterion->loss(to_float32(std::move(outputs)), micro);
    }
    StepTimes::Scope t(run_.times, StepTimes::Backward);
    scaler_.scale_loss(k == 1 ? loss : loss * (static_cast<double>(hi - lo) / static_cast<double>(n))).backward();
    const torch::Tensor part = loss.detach().to(torch::kFloat64) * static_cast<double>(hi - lo);
    loss_sum = loss_sum.defined() ? loss_sum + part : part;
  }
  return loss_sum;
}

void TrainStep::apply_gradients() {
  const bool finite = scaler_.unscale(c_.trainable);  // true unless fp16 overflowed
  if (finite) {
    if (options_.grad_clip_norm) clip_grad_norm(c_.trainable, *options_.grad_clip_norm);
    c_.optimizer->step();
  }
  scaler_.update();
}

void TrainStep::agree() {
  const int signal = pending_stop_signal();
  run_.stop_signal = signal;
  run_.time_up = run_.stop_requested;
  if (reducer_) {  // any rank's stop: every rank decides alike
    const std::vector<double> sums =
        comm_.allreduce_sum({static_cast<double>(signal), run_.stop_requested ? 1.0 : 0.0});
    run_.stop_signal = sums[0] > 0 ? (signal ? signal : SIGTERM) : 0;
    run_.time_up = sums[1] > 0;
  }
}

}  // namespace runner
