// AdamW (Loshchilov & Hutter): decoupled weight decay.
#include "adam_options.hpp"

namespace {

runner::Schema schema() {
  runner::Schema s;
  runner::plugins::add_adam_params(s, 1e-2);
  return s;
}

std::unique_ptr<torch::optim::Optimizer> make(const runner::Params& p, const runner::ParameterList& params) {
  return runner::plugins::make_adam<torch::optim::AdamWOptions, torch::optim::AdamW, runner::plugins::FusedAdamW>(
      p, params);
}

}  // namespace

RUNNER_REGISTER_OPTIMIZER("adamw", "AdamW (decoupled weight decay)", schema, make)
