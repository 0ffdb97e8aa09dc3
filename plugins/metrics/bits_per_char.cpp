// Bits per character (per target token) of a language model: the mean negative
// log-likelihood of the batch's "target" under the model's "logits" [N, V, T], in bits.
// Computed from the logits, so it is the model's likelihood whatever the criterion adds
// (label smoothing); targets outside [0, V) are ignored. Logged as val/bits_per_char.
#include <cmath>
#include <runner/plugin.hpp>

namespace {

class BitsPerChar final : public runner::Metric {
 public:
  std::string name() const override { return "bits_per_char"; }
  void reset() override { nats_ = tokens_ = 0; }
  void update(const runner::BatchOutput& out) override {
    const torch::Tensor& logits = runner::at(*out.outputs, "logits", "metric 'bits_per_char' (of the model's outputs)");
    const torch::Tensor& target = runner::at(*out.batch, "target", "metric 'bits_per_char' (of the batch's fields)");
    const torch::Tensor valid = target.ge(0).logical_and(target.lt(logits.size(1)));
    const torch::Tensor nll = torch::nn::functional::cross_entropy(
        logits, target.masked_fill(valid.logical_not(), -100),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum).ignore_index(-100));
    const torch::Tensor sums = torch::stack({nll.to(torch::kFloat64), valid.sum().to(torch::kFloat64)}).cpu();
    nats_ += sums[0].item<double>();
    tokens_ += sums[1].item<double>();
  }
  double compute() const override { return tokens_ > 0 ? nats_ / tokens_ / std::log(2.0) : std::nan(""); }
  std::vector<double> state() const override { return {nats_, tokens_}; }
  void set_state(const std::vector<double>& s) override { nats_ = s.at(0), tokens_ = s.at(1); }

 private:
  double nats_ = 0, tokens_ = 0;
};

runner::Schema schema() { return runner::Schema(); }

std::shared_ptr<runner::Metric> make(const runner::Params&, const runner::MetricContext&) {
  return std::make_shared<BitsPerChar>();
}

}  // namespace

RUNNER_REGISTER_METRIC("bits_per_char", "mean negative log-likelihood of the targets in bits (language models)", schema,
                       make)
