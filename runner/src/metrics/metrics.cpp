#include "metrics/metrics.hpp"

#include <cmath>

namespace runner {

void TopKAccuracy::update(const BatchOutput& out) {
  const int64_t k = std::min<int64_t>(k_, out.logits.size(1));
  const auto topk = std::get<1>(out.logits.topk(k, /*dim=*/1));
  correct_ += static_cast<double>(topk.eq(out.targets.unsqueeze(1)).any(1).sum().item<int64_t>());
  count_ += static_cast<double>(out.targets.size(0));
}

double TopKAccuracy::compute() const { return count_ > 0 ? correct_ / count_ : std::nan(""); }

void AverageLoss::update(const BatchOutput& out) {
  const double n = static_cast<double>(out.targets.size(0));
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
