// Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.
#include <runner/plugin.hpp>

#include "fused.hpp"
#include "one_pass_sgd.hpp"

namespace {

runner::Schema schema() {
  runner::Schema s;
  s.add("lr", runner::ParamType::Float, "learning rate (the scheduler's base value)").required().min(0);
  s.add("momentum", runner::ParamType::Float, "momentum factor").def(0.0).min(0).max(1);
  s.add("dampening", runner::ParamType::Float, "dampening of momentum").def(0.0).min(0).max(1);
  s.add("nesterov", runner::ParamType::Bool, "Nesterov momentum (needs momentum > 0, dampening 0)").def(false);
  s.add("weight_decay", runner::ParamType::Float, "L2 penalty on all parameters").def(0.0).min(0);
  s.add("fused", runner::ParamType::Bool,
        "step with one fused kernel (ATen's _fused_sgd_) instead of per parameter; null (default): "
        "fused on CUDA, per parameter on the CPU (torch::optim's rule bit for bit, each parameter in one "
        "pass; see README)")
      .allow_null();
  return s;
}

std::unique_ptr<torch::optim::Optimizer> make(const runner::Params& p, const runner::ParameterList& params) {
  const double momentum = p.get<double>("momentum"), dampening = p.get<double>("dampening");
  const bool nesterov = p.get<bool>("nesterov");
  if (nesterov && (momentum <= 0 || dampening != 0))
    throw runner::ParamError("nesterov", "needs momentum > 0 and dampening 0");
  const auto options = torch::optim::SGDOptions(p.get<double>("lr"))
                           .momentum(momentum)
                           .dampening(dampening)
                           .nesterov(nesterov)
                           .weight_decay(p.get<double>("weight_decay"));
  if (runner::plugins::use_fused(p, params)) return std::make_unique<runner::plugins::FusedSGD>(params, options);
  return std::make_unique<runner::plugins::OnePassSGD>(params, options);
}

}  // namespace

RUNNER_REGISTER_OPTIMIZER("sgd", "SGD with momentum, Nesterov and weight decay", schema, make)
