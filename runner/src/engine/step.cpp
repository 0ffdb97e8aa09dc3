#include "engine/step.hpp"

#include <cmath>

#include "dist/sync.hpp"
#include "engine/precision.hpp"
#include "engine/signals.hpp"
#include "runner/error.hpp"

namespace runner {

TrainStep::TrainStep(const StepOptions& options, Components& components, GradReducer* reducer, Communicator& comm,
                     RunState& run)
    : options_(options), c_(components), reducer_(reducer), comm_(comm), run_(run), scaler_(options.amp == "fp16") {}

void TrainStep::operator()(Engine& e, Batch& batch) {
  const int64_t n = batch.input.size(0);
  if (!reducer_) c_.optimizer->zero_grad();
  const torch::Tensor loss_sum = forward_backward(batch);
  if (reducer_) reducer_->finish();
  apply_gradients();
  agree(e, loss_sum, n);
  run_.samples += n;
}

// k micro-batches of this rank's batch; their gradients add up to the gradient of the
// batch's mean loss. This rank's share of the global batch weights its gradient (see
// GradReducer), which communicates once, during the last micro-batch's backward.
torch::Tensor TrainStep::forward_backward(const Batch& batch) {
  const int64_t n = batch.input.size(0);
  const int64_t k = options_.grad_accumulation_steps;
  const double share = static_cast<double>(n) / static_cast<double>(batch.global_size);
  torch::Tensor loss_sum;  // summed on the loss's device, read once per step
  for (int64_t m = 0; m < k; ++m) {
    const int64_t lo = n * m / k, hi = n * (m + 1) / k;
    if (reducer_) reducer_->prepare(share, /*sync=*/m == k - 1, /*zero=*/m == 0);
    if (hi == lo) continue;
    torch::Tensor x = batch.input.slice(0, lo, hi), y = batch.target.slice(0, lo, hi);
    if (options_.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
    torch::Tensor logits;
    {
      AutocastScope autocast(options_.amp);
      logits = c_.model->forward(x);
    }
    torch::Tensor loss = (*c_.criterion)(logits.to(torch::kFloat32), y);
    scaler_.scale_loss(k == 1 ? loss : loss * (static_cast<double>(hi - lo) / static_cast<double>(n))).backward();
    const torch::Tensor part = loss.detach().to(torch::kFloat64) * static_cast<double>(hi - lo);
    loss_sum = loss_sum.defined() ? loss_sum + part : part;
  }
  return loss_sum;
}

void TrainStep::apply_gradients() {
  const bool finite = scaler_.unscale(c_.trainable);  // true unless fp16 overflowed
  if (finite) {
    if (options_.grad_clip_norm) torch::nn::utils::clip_grad_norm_(c_.trainable, *options_.grad_clip_norm);
    c_.optimizer->step();
  }
  scaler_.update(finite);
}

void TrainStep::agree(const Engine& e, const torch::Tensor& loss_sum, int64_t n) {
  const double local_loss = loss_sum.defined() ? loss_sum.item<double>() / static_cast<double>(n) : 0;
  const int signal = pending_stop_signal();
  run_.batch_loss = local_loss;
  run_.stop_signal = signal;
  run_.time_up = run_.stop_requested;
  if (reducer_) {  // the global batch's mean loss, and any rank's stop: every rank decides alike
    const std::vector<double> sums =
        comm_.allreduce_sum({local_loss * static_cast<double>(n), static_cast<double>(n), static_cast<double>(signal),
                             run_.stop_requested ? 1.0 : 0.0});
    run_.batch_loss = sums[0] / sums[1];
    run_.stop_signal = sums[2] > 0 ? (signal ? signal : SIGTERM) : 0;
    run_.time_up = sums[3] > 0;
  }
  if (!std::isfinite(run_.batch_loss))
    agree_on_failure(comm_, std::make_exception_ptr(Error("train/batch_loss is " + std::to_string(run_.batch_loss) +
                                                          " at iteration " + std::to_string(e.state.iteration) +
                                                          " (epoch " + std::to_string(e.state.epoch) +
                                                          "); lower the learning rate or check the data")));
  run_.running_loss.update(run_.batch_loss);
}

}  // namespace runner
