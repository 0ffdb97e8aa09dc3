// AdamW (Loshchilov & Hutter): decoupled weight decay.
#include "adam_options.hpp"

namespace {

runner::Schema schema() {
  runner::Schema s;
  runner::plugins::add_adam_params(s, 1e-2);
  return s;
}

std::unique_ptr<torch::optim::Optimizer> make(const runner::Params& p, const runner::ParameterList& params) {
  return std::make_unique<torch::optim::AdamW>(params, torch::optim::AdamWOptions(p.get<double>("lr"))
                                                           .betas(runner::plugins::read_betas(p))
                                                           .eps(p.get<double>("eps"))
                                                           .weight_decay(p.get<double>("weight_decay"))
                                                           .amsgrad(p.get<bool>("amsgrad")));
}

}  // namespace

RUNNER_REGISTER_OPTIMIZER("adamw", "AdamW (decoupled weight decay)", schema, make)
