// Adam (Kingma & Ba); weight decay as an L2 term added to the gradient.
#include "adam_options.hpp"

namespace {

runner::Schema schema() {
  runner::Schema s;
  runner::plugins::add_adam_params(s, 0.0);
  return s;
}

std::unique_ptr<torch::optim::Optimizer> make(const runner::Params& p, const runner::ParameterList& params) {
  return runner::plugins::make_adam<torch::optim::AdamOptions, torch::optim::Adam, runner::plugins::FusedAdam>(p,
                                                                                                               params);
}

}  // namespace

RUNNER_REGISTER_OPTIMIZER("adam", "Adam (L2 weight decay added to the gradient)", schema, make)
