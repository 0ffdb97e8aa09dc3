// Multi-layer perceptron on flattened inputs: in -> hidden... -> classes, ReLU between.
#include "common.hpp"

namespace {

using runner::plugins::models::add_num_classes;
using runner::plugins::models::output_classes;

class Mlp final : public runner::Model {
 public:
  Mlp(int64_t in_features, const std::vector<int64_t>& hidden, int64_t classes) {
    int64_t prev = in_features;
    for (size_t i = 0; i < hidden.size(); ++i) {
      layers_.push_back(register_module("fc" + std::to_string(i + 1), torch::nn::Linear(prev, hidden[i])));
      prev = hidden[i];
    }
    head_ = register_module("head", torch::nn::Linear(prev, classes));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = x.flatten(1);
    for (size_t i = 0; i < layers_.size(); ++i) x = trace("fc" + std::to_string(i + 1), torch::relu(layers_[i](x)));
    return trace("head", head_(x));
  }

 private:
  std::vector<torch::nn::Linear> layers_;
  torch::nn::Linear head_{nullptr};
};

runner::Schema schema() {
  runner::Schema s;
  s.add("hidden", runner::ParamType::List, "sizes of the hidden layers").def(std::vector<int64_t>{512, 512});
  add_num_classes(s);
  return s;
}

std::shared_ptr<runner::Model> make(const runner::Params& p, const runner::ModelContext& ctx) {
  std::vector<int64_t> hidden;
  try {
    hidden = p.node("hidden").as<std::vector<int64_t>>();
  } catch (const YAML::Exception&) {
    throw runner::ParamError("hidden", "expected a list of layer sizes such as [512, 512]");
  }
  for (int64_t h : hidden)
    if (h < 1) throw runner::ParamError("hidden", "layer sizes must be >= 1");
  int64_t in = 1;
  for (int64_t d : ctx.input_shape) in *= d;
  return std::make_shared<Mlp>(in, hidden, output_classes(p, ctx));
}

}  // namespace

RUNNER_REGISTER_MODEL("mlp", "multi-layer perceptron on flattened input (default 784-512-512-10, ReLU)", schema, make)
