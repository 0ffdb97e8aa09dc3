#include "dist/reducer.hpp"

#include <torch/csrc/autograd/utils/lambda_post_hook.h>

#include <chrono>

namespace runner {

GradReducer::GradReducer(std::vector<torch::Tensor> params, Communicator& comm, int64_t bucket_bytes)
    : params_(std::move(params)), comm_(comm) {
  // Buckets in reverse parameter order; a new bucket when the size limit is reached or
  // the dtype/device changes (a bucket is one flat buffer).
  std::vector<std::vector<size_t>> groups;
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const torch::Tensor& p = params_[k];
    const int64_t b = p.numel() * static_cast<int64_t>(p.element_size());
    const bool fits = !groups.empty() && bytes + b <= bucket_bytes &&
                      params_[groups.back().front()].scalar_type() == p.scalar_type() &&
                      params_[groups.back().front()].device() == p.device();
    if (!fits) groups.emplace_back(), bytes = 0;
    groups.back().push_back(k);
    bytes += b;
  }
  slots_.resize(params_.size());
  for (const auto& group : groups) {
    Bucket bucket;
    int64_t numel = 0;
    for (size_t k : group) numel += params_[k].numel();
    bucket.flat = torch::zeros({numel}, params_[group.front()].options().requires_grad(false));
    int64_t offset = 0;
    for (size_t k : group) {
      const torch::Tensor& p = params_[k];
      // The view keeps the parameter's memory layout (e.g. channels_last), as
      // AccumulateGrad expects of a gradient.
      torch::Tensor view = p.is_non_overlapping_and_dense() ? bucket.flat.as_strided(p.sizes(), p.strides(), offset)
                                                            : bucket.flat.narrow(0, offset, p.numel()).view(p.sizes());
      slots_[k] = Slot{buckets_.size(), view, false};
      offset += p.numel();
    }
    bucket.params = group;
    buckets_.push_back(std::move(bucket));
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    auto acc = torch::autograd::impl::grad_accumulator(params_[k]);
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          on_grad_ready(k);
          return outputs;
        })));
    accumulators_.push_back(std::move(acc));
  }
}

GradReducer::~GradReducer() {
  for (size_t k = 0; k < accumulators_.size(); ++k) accumulators_[k]->del_post_hook(hook_keys_[k]);
}

void GradReducer::prepare(double weight, bool sync, bool zero) {
  if (zero)
    for (auto& b : buckets_) b.flat.zero_();
  for (size_t k = 0; k < params_.size(); ++k) {
    torch::Tensor& grad = params_[k].mutable_grad();
    if (!grad.defined() || !grad.is_same(slots_[k].view)) grad = slots_[k].view;
    slots_[k].ready = false;
  }
  for (auto& b : buckets_) {
    b.pending = b.params.size();
    b.work.reset();
  }
  next_launch_ = 0;
  weight_ = weight;
  sync_ = sync;
  armed_ = true;
}

void GradReducer::on_grad_ready(size_t k) {
  if (!armed_ || !sync_) return;
  Slot& slot = slots_[k];
  if (slot.ready) return;
  slot.ready = true;
  // AccumulateGrad replaces .grad instead of adding in place in rare cases (e.g.
  // create_graph): bring the value back into the bucket.
  torch::Tensor& grad = params_[k].mutable_grad();
  if (grad.defined() && !grad.is_same(slot.view)) {
    slot.view.copy_(grad);
    grad = slot.view;
  }
  Bucket& b = buckets_[slot.bucket];
  if (--b.pending == 0) launch_ready_in_order(/*from_hook=*/true);
  // Open MPI progresses non-blocking collectives only inside MPI calls.
  for (size_t i = 0; i < next_launch_; ++i)
    if (buckets_[i].work) buckets_[i].work->test();
}

void GradReducer::launch_ready_in_order(bool from_hook) {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].pending == 0) {
    launch(buckets_[next_launch_++]);
    ++launched_;
    if (from_hook) ++launched_in_backward_;
  }
}

void GradReducer::launch(Bucket& b) {
  if (weight_ != 1.0) b.flat.mul_(weight_);
  b.work = comm_.allreduce_async(b.flat);
}

void GradReducer::finish() {
  if (!armed_) return;
  armed_ = false;
  if (!sync_) return;
  // Buckets backward did not complete (unused parameters): their remaining gradients
  // are the zeros (or accumulated values) already in the buffer.
  for (auto& b : buckets_) b.pending = 0;
  launch_ready_in_order(/*from_hook=*/false);
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& b : buckets_) b.work->wait();
  wait_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace runner
