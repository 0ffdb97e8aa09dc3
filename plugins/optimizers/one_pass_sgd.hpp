#pragma once
// The built-in sgd's step on the CPU when it is not `fused`: torch::optim::SGD's rule, bit for
// bit, with each float32 parameter stepped in one pass (sgd_kernel.cpp) instead of LibTorch's
// chain of four operators and two temporaries per parameter. The state stays LibTorch's
// (SGDParamState momentum buffers), so checkpoints are torch::optim's format. A parameter the
// kernel does not take (not float32 on the CPU, a gradient in another layout, a CPU whose ATen
// kernels do not use FMA) steps through the operator chain itself.
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/torch.h>

#include "sgd_kernel.hpp"

namespace runner::plugins {

class OnePassSGD : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;

  torch::Tensor step(LossClosure closure = nullptr) override {
    torch::NoGradGuard no_grad;
    torch::Tensor loss;
    if (closure) {
      at::AutoGradMode enable_grad(true);
      loss = closure();
    }
    for (auto& group : param_groups_) {
      const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
      for (auto& p : group.params())
        if (p.grad().defined()) step_one(p, o);
    }
    return loss;
  }

  /// Parameter steps the one-pass kernel has taken (the rest went through the operators).
  int64_t kernel_steps() const { return kernel_steps_; }

 private:
  int64_t kernel_steps_ = 0;

  torch::Tensor buffer_of(const torch::Tensor& p) const {
    auto it = state_.find(p.unsafeGetTensorImpl());
    if (it == state_.end()) return {};
    return static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer();
  }

  void set_buffer(const torch::Tensor& p, torch::Tensor buf) {
    auto st = std::make_unique<torch::optim::SGDParamState>();
    st->momentum_buffer(std::move(buf));
    state_[p.unsafeGetTensorImpl()] = std::move(st);
  }

  /// Whether the kernel gives exactly what the operator chain gives for p.
  static bool kernel_fits(const torch::Tensor& p, const torch::Tensor& g, const torch::Tensor& buf) {
    static const bool fma = [] {  // ATen's x86 kernels with FMA: its AVX2 and AVX-512 builds
      const std::string c = at::get_cpu_capability();
      return c == "AVX2" || c == "AVX512";
    }();
    const auto same = [&](const torch::Tensor& t) {
      return t.device().is_cpu() && t.layout() == torch::kStrided && t.scalar_type() == torch::kFloat32 &&
             t.strides() == p.strides();
    };
    return fma && same(p) && same(g) && (!buf.defined() || same(buf)) && p.is_non_overlapping_and_dense();
  }

  void step_one(torch::Tensor& p, const torch::optim::SGDOptions& o) {
    const torch::Tensor& g = p.grad();
    const bool momentum = o.momentum() != 0;
    torch::Tensor buf = momentum ? buffer_of(p) : torch::Tensor();
    if (!kernel_fits(p, g, buf)) return step_operators(p, o, buf);
    sgd_kernel::Coeffs c;
    c.weight_decay = static_cast<float>(o.weight_decay());
    c.momentum = static_cast<float>(o.momentum());
    c.damp = static_cast<float>(1 - o.dampening());
    c.neg_lr = static_cast<float>(-1 * o.lr());
    c.nesterov = o.nesterov();
    if (momentum && !buf.defined()) {
      buf = torch::empty_like(p, at::MemoryFormat::Preserve);
      set_buffer(p, buf);
      c.first = true;
    }
    float* pp = p.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* bp = momentum ? buf.data_ptr<float>() : nullptr;
    sgd_kernel::step(c, pp, gp, bp, p.numel(), at::get_num_threads());
    ++kernel_steps_;
  }

  /// torch::optim::SGD::step's operators for one parameter (buf: its momentum buffer, if any).
  void step_operators(torch::Tensor& p, const torch::optim::SGDOptions& o, torch::Tensor buf) {
    torch::Tensor d = p.grad().data();
    if (o.weight_decay() != 0) d = d.add(p.data(), o.weight_decay());
    if (o.momentum() != 0) {
      if (!buf.defined()) {
        buf = torch::clone(d).detach();
        set_buffer(p, buf);
      } else {
        buf.mul_(o.momentum()).add_(d, 1 - o.dampening());
      }
      d = o.nesterov() ? d.add(buf, o.momentum()) : buf;
    }
    p.data().add_(d, -1 * o.lr());  // through data(), as LibTorch: the parameter's version stays
  }
};

}  // namespace runner::plugins
