// Cross-entropy on logits, with optional label smoothing.
#include <runner/plugin.hpp>

namespace {

class CrossEntropy final : public runner::Criterion {
 public:
  explicit CrossEntropy(double smoothing)
      : options_(torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(smoothing)) {}
  torch::Tensor operator()(const torch::Tensor& logits, const torch::Tensor& targets) override {
    return torch::nn::functional::cross_entropy(logits, targets, options_);
  }

 private:
  torch::nn::functional::CrossEntropyFuncOptions options_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("label_smoothing", runner::ParamType::Float, "share of the target mass spread uniformly")
      .def(0.0)
      .min(0)
      .max(0.999);
  return s;
}

std::shared_ptr<runner::Criterion> make(const runner::Params& p) {
  return std::make_shared<CrossEntropy>(p.get<double>("label_smoothing"));
}

}  // namespace

RUNNER_REGISTER_CRITERION("cross_entropy", "cross-entropy on logits with optional label smoothing", schema, make)
