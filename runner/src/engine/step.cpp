#include "engine/step.hpp"

#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>

#include <csignal>

#include "dist/sync.hpp"
#include "engine/precision.hpp"
#include "engine/signals.hpp"
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

TrainStep::TrainStep(const StepOptions& options, torch::Device device, Components& components, GradReducer* reducer,
                     Communicator& comm, RunState& run)
    : options_(options),
      device_(device),
      c_(components),
      reducer_(reducer),
      comm_(comm),
      run_(run),
      scaler_(options.amp == "fp16", device) {}

void TrainStep::operator()(Engine&, Batch& batch) {
  const int64_t n = batch.size();
  if (!reducer_) {
    StepTimes::Scope t(run_.times, StepTimes::Optimizer);
    c_.optimizer->zero_grad();
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
  {
    StepTimes::Scope t(run_.times, StepTimes::CommWait);
    agree();
  }
  run_.samples += n;
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
