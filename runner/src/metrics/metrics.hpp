#pragma once
// Metrics computed over a stream of batches: accumulate with update(), read with
// compute(). Values are exact counts/sums (double), so they can later be all-reduced
// across ranks before compute().
#include <torch/torch.h>

#include "runner/components.hpp"

#include <memory>
#include <string>
#include <vector>

namespace runner {

/// Top-k accuracy (k = 1: plain accuracy, named "accuracy"; else "top<k>").
class TopKAccuracy : public Metric {
 public:
  explicit TopKAccuracy(int64_t k) : k_(k) {}
  std::string name() const override { return k_ == 1 ? "accuracy" : "top" + std::to_string(k_); }
  void reset() override { correct_ = count_ = 0; }
  void update(const BatchOutput& out) override;
  double compute() const override;
  std::vector<double> state() const override { return {correct_, count_}; }
  void set_state(const std::vector<double>& s) override { correct_ = s.at(0), count_ = s.at(1); }

 private:
  int64_t k_;
  double correct_ = 0, count_ = 0;
};

/// Sample-weighted average of the batch loss.
class AverageLoss : public Metric {
 public:
  std::string name() const override { return "loss"; }
  void reset() override { sum_ = count_ = 0; }
  void update(const BatchOutput& out) override;
  double compute() const override;
  std::vector<double> state() const override { return {sum_, count_}; }
  void set_state(const std::vector<double>& s) override { sum_ = s.at(0), count_ = s.at(1); }

 private:
  double sum_ = 0, count_ = 0;
};

/// The standard classification set: accuracy, top5 (when there are > 5 classes), loss.
std::vector<std::shared_ptr<Metric>> classification_metrics(int64_t num_classes);

}  // namespace runner
