#pragma once
// Parameters shared by adam and adamw (each registers in its own .cpp).
#include <runner/plugin.hpp>

#include <memory>

#include "fused.hpp"

namespace runner::plugins {

inline void add_adam_params(Schema& s, double default_weight_decay) {
  s.add("lr", ParamType::Float, "learning rate (the scheduler's base value)").def(1e-3).min(0);
  s.add("betas", ParamType::List, "coefficients of the running averages [beta1, beta2]")
      .def(std::vector<double>{0.9, 0.999});
  s.add("eps", ParamType::Float, "term added to the denominator").def(1e-8).greater_than(0);
  s.add("weight_decay", ParamType::Float, "weight decay").def(default_weight_decay).min(0);
  s.add("amsgrad", ParamType::Bool, "use the AMSGrad variant").def(false);
  s.add("fused", ParamType::Bool,
        "step with one fused kernel (ATen's _fused_adam(w)_) instead of per parameter; null (default): "
        "fused on CUDA, per parameter on the CPU (see README)")
      .allow_null();
}

inline std::tuple<double, double> read_betas(const Params& p) {
  std::vector<double> b;
  try {
    b = p.node("betas").as<std::vector<double>>();
  } catch (const YAML::Exception&) {
  }
  if (b.size() != 2 || b[0] < 0 || b[0] >= 1 || b[1] < 0 || b[1] >= 1)
    throw ParamError("betas", "expected two numbers in [0, 1), such as [0.9, 0.999]");
  return {b[0], b[1]};
}

/// An Adam-family optimizer from its parameters: LibTorch's `Plain`, or `Fused` (use_fused).
template <class Options, class Plain, class Fused>
std::unique_ptr<torch::optim::Optimizer> make_adam(const Params& p, const ParameterList& params) {
  const auto options = Options(p.get<double>("lr"))
                           .betas(read_betas(p))
                           .eps(p.get<double>("eps"))
                           .weight_decay(p.get<double>("weight_decay"))
                           .amsgrad(p.get<bool>("amsgrad"));
  if (runner::plugins::use_fused(p, params)) return std::make_unique<Fused>(params, options);
  return std::make_unique<Plain>(params, options);
}

}  // namespace runner::plugins
