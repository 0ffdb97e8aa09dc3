#include "metrics/metrics.hpp"

#include <cmath>

#include "runner/error.hpp"

namespace runner {

// logits [N, C, ...] against targets [N, ...]: every position counts, except targets
// outside [0, C) (ignored: cross_entropy's ignore_index -100, a segmentation map's 255).
void TopKAccuracy::update(const BatchOutput& out) {
  if (!out.logits.defined() || !out.targets.defined())
    throw Error("metric '" + name() + "' needs the model's 'logits' output and the batch's 'target' field");
  const torch::Tensor &logits = out.logits, &targets = out.targets;
  const int64_t k = std::min<int64_t>(k_, logits.size(1));
  const auto topk = std::get<1>(logits.topk(k, /*dim=*/1));
  const torch::Tensor valid = targets.ge(0).logical_and(targets.lt(logits.size(1)));
  const torch::Tensor hit = topk.eq(targets.unsqueeze(1)).any(1).logical_and(valid);
  const torch::Tensor counts = torch::stack({hit.sum(), valid.sum()}).cpu();
  correct_ += static_cast<double>(counts[0].item<int64_t>());
  count_ += static_cast<double>(counts[1].item<int64_t>());
}

double TopKAccuracy::compute() const { return count_ > 0 ? correct_ / count_ : std::nan(""); }

void AverageLoss::update(const BatchOutput& out) {
  const double n = static_cast<double>(out.samples);
  sum_ += out.loss * n;
  count_ += n;
}

double AverageLoss::compute() const { return count_ > 0 ? sum_ / count_ : std::nan(""); }

std::vector<std::shared_ptr<Metric>> classification_metrics(int64_t num_classes) {
  std::vector<std::shared_ptr<Metric>> m;
  m.push_back(std::make_shared<TopKAccuracy>(1));
  if (num_classes > 5) m.push_back(std::make_shared<TopKAccuracy>(5));
  m.push_back(std::make_shared<AverageLoss>());
  return m;
}

}  // namespace runner
