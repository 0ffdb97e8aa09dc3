// Cross-entropy on logits [N, C, ...] against class indices [N, ...] (a class per sample,
// per pixel or per token), with optional label smoothing and an ignored target value.
#include <runner/plugin.hpp>

namespace {

class CrossEntropy final : public runner::Criterion {
 public:
  CrossEntropy(double smoothing, int64_t ignore_index)
      : options_(
            torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(smoothing).ignore_index(ignore_index)) {}
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
  s.add("ignore_index", runner::ParamType::Int,
        "target value that contributes no loss (the built-in accuracy ignores every negative target)")
      .def(-100);
  return s;
}

std::shared_ptr<runner::Criterion> make(const runner::Params& p) {
  return std::make_shared<CrossEntropy>(p.get<double>("label_smoothing"), p.get<int64_t>("ignore_index"));
}

}  // namespace

RUNNER_REGISTER_CRITERION("cross_entropy",
                          "cross-entropy on logits [N, C, ...] against classes [N, ...], label smoothing, ignore_index",
                          schema, make)
