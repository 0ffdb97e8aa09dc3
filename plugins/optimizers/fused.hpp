#pragma once
// The built-in optimizers' step with ATen's fused kernels (at::_fused_sgd_, _fused_adam_,
// _fused_adamw_: the ones torch.optim uses with fused=True), on the CPU and on CUDA: one
// call per parameter group and (device, dtype) instead of several kernel launches per
// parameter. Each class derives from LibTorch's optimizer and keeps its state in the same
// per-parameter objects (momentum buffers, exp_avg, ...), so checkpoints are the same
// format as torch::optim's, and the math is the same rule (tested against it to float
// tolerance in unit.components). Each is a runner::CapturableOptimizer: after
// lr_from_tensors() the kernels read the learning rate from a device tensor (their tensor-lr
// overloads), so a CUDA graph can hold the step (`cuda_graph: true`).
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_fused_adam.h>
#include <ATen/ops/_fused_adamw.h>
#include <ATen/ops/_fused_sgd.h>
#include <torch/torch.h>

#include <runner/components.hpp>
#include <runner/params.hpp>

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace runner::plugins {

/// `fused` of the built-in sgd, adam and adamw: as the config gives it, or, when null (the
/// default), fused where every parameter is on CUDA (where tools/gpu/check.sh compares it with
/// the per-parameter step) and per parameter on the CPU (PyTorch's default there too; README,
/// Performance, says what the fused CPU kernel rounds differently).
inline bool use_fused(const runner::Params& p, const std::vector<torch::Tensor>& params) {
  if (!p.is_null("fused")) return p.get<bool>("fused");
  return !params.empty() &&
         std::all_of(params.begin(), params.end(), [](const torch::Tensor& t) { return t.is_cuda(); });
}

/// Indices of `params` grouped by (device, dtype): a fused kernel takes one of each.
inline std::map<std::pair<std::string, int>, std::vector<size_t>> by_device_dtype(
    const std::vector<torch::Tensor>& params) {
  std::map<std::pair<std::string, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < params.size(); ++i)
    groups[{params[i].device().str(), static_cast<int>(params[i].scalar_type())}].push_back(i);
  return groups;
}

/// The gradient in its parameter's memory layout: the fused kernels walk both buffers
/// element by element (AccumulateGrad already matches them; a hand-set gradient may not).
inline torch::Tensor grad_like(const torch::Tensor& p) {
  const torch::Tensor& g = p.grad();
  if (g.strides() == p.strides()) return g;
  return torch::empty_like(p, at::MemoryFormat::Preserve).copy_(g);
}

template <class T>
std::vector<T> pick(const std::vector<T>& all, const std::vector<size_t>& idx) {
  std::vector<T> out;
  out.reserve(idx.size());
  for (size_t i : idx) out.push_back(all[i]);
  return out;
}

/// CapturableOptimizer's learning rates: one float32 scalar per parameter group, on the device
/// of the group's first parameter; empty until made (the kernels then take the double).
class LrTensors {
 public:
  bool on() const { return !t_.empty(); }
  void make(const std::vector<torch::optim::OptimizerParamGroup>& groups) {
    t_.clear();
    for (const auto& g : groups) {
      const torch::Device d = g.params().empty() ? torch::Device(torch::kCPU) : g.params()[0].device();
      t_.push_back(torch::full({}, g.options().get_lr(), torch::dtype(torch::kFloat32).device(d)));
    }
  }
  void refresh(const std::vector<torch::optim::OptimizerParamGroup>& groups) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < t_.size(); ++i) t_[i].fill_(groups[i].options().get_lr());
  }
  const torch::Tensor& operator[](size_t group) const { return t_.at(group); }

 private:
  std::vector<torch::Tensor> t_;
};

class FusedSGD : public torch::optim::SGD, public runner::CapturableOptimizer {
 public:
  using torch::optim::SGD::SGD;

  void lr_from_tensors() override { lr_.make(param_groups_); }
  void refresh_lr() override { lr_.refresh(param_groups_); }

  torch::Tensor step(LossClosure closure = nullptr) override {
    torch::NoGradGuard no_grad;
    torch::Tensor loss;
    if (closure) loss = closure();
    for (size_t gi = 0; gi < param_groups_.size(); ++gi) {
      auto& group = param_groups_[gi];
      const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
      // Parameters whose momentum buffer exists, and those stepping for the first time (the
      // kernel then starts their buffer from the gradient, as torch::optim::SGD does).
      std::vector<torch::Tensor> params[2], grads[2], bufs[2];
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        int first = 0;
        torch::Tensor buf;
        if (o.momentum() != 0) {
          auto it = state_.find(p.unsafeGetTensorImpl());
          if (it == state_.end()) {
            auto st = std::make_unique<torch::optim::SGDParamState>();
            st->momentum_buffer(torch::empty_like(p, at::MemoryFormat::Preserve));
            buf = st->momentum_buffer();
            state_[p.unsafeGetTensorImpl()] = std::move(st);
            first = 1;
          } else {
            buf = static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer();
          }
          bufs[first].push_back(buf);
        }
        params[first].push_back(p);
        grads[first].push_back(grad_like(p));
      }
      for (int first : {0, 1})
        for (const auto& [key, idx] : by_device_dtype(params[first])) {
          const std::vector<torch::Tensor> p = pick(params[first], idx), g = pick(grads[first], idx),
                                           b = o.momentum() != 0 ? pick(bufs[first], idx) : bufs[first];
          const auto run = [&](const auto& lr) {  // the learning rate as a double or a tensor
            at::_fused_sgd_(p, g, b, o.weight_decay(), o.momentum(), lr, o.dampening(), o.nesterov(),
                            /*maximize=*/false, /*is_first_step=*/first == 1);
          };
          if (lr_.on())
            run(lr_[gi]);
          else
            run(o.lr());
        }
    }
    return loss;
  }

 private:
  LrTensors lr_;
};

/// Adam (`Decoupled` false: L2 weight decay) and AdamW (true) with the fused kernels. The
/// step counts the kernels read live in tensors beside the state's own count (rebuilt from
/// it after a checkpoint is loaded). With the learning rate from tensors (a graph may replay
/// the step without its host code) the state's count is read back from them in save().
template <class Base, class Options, class State, bool Decoupled>
class FusedAdamT : public Base, public runner::CapturableOptimizer {
 public:
  using Base::Base;

  void lr_from_tensors() override { lr_.make(this->param_groups_); }
  void refresh_lr() override { lr_.refresh(this->param_groups_); }

  torch::Tensor step(typename Base::LossClosure closure = nullptr) override {
    torch::NoGradGuard no_grad;
    torch::Tensor loss;
    if (closure) loss = closure();
    for (size_t gi = 0; gi < this->param_groups_.size(); ++gi) {
      auto& group = this->param_groups_[gi];
      const auto& o = static_cast<const Options&>(group.options());
      std::vector<torch::Tensor> params, grads, avgs, sqs, maxs, steps;
      std::vector<State*> states;
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        State& st = state_of(p, o.amsgrad());
        params.push_back(p);
        grads.push_back(grad_like(p));
        avgs.push_back(st.exp_avg());
        sqs.push_back(st.exp_avg_sq());
        if (o.amsgrad()) maxs.push_back(st.max_exp_avg_sq());
        steps.push_back(step_tensor(p, st));
        states.push_back(&st);
      }
      if (params.empty()) continue;
      at::_foreach_add_(steps, 1);  // the kernels read the step after its increment
      if (!lr_.on())
        for (State* st : states) st->step(st->step() + 1);
      const auto [beta1, beta2] = o.betas();
      for (const auto& [key, idx] : by_device_dtype(params)) {
        const std::vector<torch::Tensor> p = pick(params, idx), g = pick(grads, idx), a = pick(avgs, idx),
                                         s = pick(sqs, idx), m = o.amsgrad() ? pick(maxs, idx) : maxs,
                                         n = pick(steps, idx);
        const auto run = [&](const auto& lr) {  // the learning rate as a double or a tensor
          if constexpr (Decoupled)
            at::_fused_adamw_(p, g, a, s, m, n, lr, beta1, beta2, o.weight_decay(), o.eps(), o.amsgrad(), false);
          else
            at::_fused_adam_(p, g, a, s, m, n, lr, beta1, beta2, o.weight_decay(), o.eps(), o.amsgrad(), false);
        };
        if (lr_.on())
          run(lr_[gi]);
        else
          run(o.lr());
      }
    }
    return loss;
  }

  void save(torch::serialize::OutputArchive& archive) const override {
    if (lr_.on() && !steps_.empty()) {  // the device's counts into the states: one read, at a checkpoint
      std::vector<void*> keys;
      std::vector<torch::Tensor> counts;
      for (const auto& [key, t] : steps_) {
        keys.push_back(key);
        counts.push_back(t.to(steps_.begin()->second.device()));
      }
      const torch::Tensor host = torch::stack(counts).to(torch::kCPU, torch::kFloat64);
      for (size_t i = 0; i < keys.size(); ++i)
        if (auto it = this->state_.find(keys[i]); it != this->state_.end())
          static_cast<State&>(*it->second)
              .step(static_cast<int64_t>(host[static_cast<int64_t>(i)].template item<double>()));
    }
    Base::save(archive);
  }

  void load(torch::serialize::InputArchive& archive) override {
    Base::load(archive);
    steps_.clear();  // rebuilt from the loaded states' counts
  }

 private:
  State& state_of(const torch::Tensor& p, bool amsgrad) {
    auto it = this->state_.find(p.unsafeGetTensorImpl());
    if (it != this->state_.end()) return static_cast<State&>(*it->second);
    auto st = std::make_unique<State>();
    st->step(0);
    st->exp_avg(torch::zeros_like(p, at::MemoryFormat::Preserve));
    st->exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
    if (amsgrad) st->max_exp_avg_sq(torch::zeros_like(p, at::MemoryFormat::Preserve));
    State& ref = *st;
    this->state_[p.unsafeGetTensorImpl()] = std::move(st);
    return ref;
  }
  torch::Tensor step_tensor(const torch::Tensor& p, const State& st) {
    torch::Tensor& t = steps_[p.unsafeGetTensorImpl()];
    if (!t.defined()) t = torch::full({}, static_cast<double>(st.step()), p.options().dtype(torch::kFloat32));
    return t;
  }

  std::unordered_map<void*, torch::Tensor> steps_;
  LrTensors lr_;
};

using FusedAdam = FusedAdamT<torch::optim::Adam, torch::optim::AdamOptions, torch::optim::AdamParamState, false>;
using FusedAdamW = FusedAdamT<torch::optim::AdamW, torch::optim::AdamWOptions, torch::optim::AdamWParamState, true>;

}  // namespace runner::plugins
