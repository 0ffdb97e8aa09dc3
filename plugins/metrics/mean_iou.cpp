// Mean intersection over union of a segmentation: per class, the pixels predicted as it
// and labelled as it (intersection) over the pixels either predicted or labelled as it
// (union), from the argmax of "logits" [N, C, H, W] against "target" [N, H, W]; targets
// outside [0, C) (an ignore index) count for no class. The mean is over the classes that
// occur (union > 0). The state is the per-class counts, so it sums across ranks exactly.
// Logged as val/mean_iou.
#include <cmath>
#include <runner/plugin.hpp>

namespace {

class MeanIoU final : public runner::Metric {
 public:
  explicit MeanIoU(int64_t classes) : classes_(classes) { reset(); }
  std::string name() const override { return "mean_iou"; }
  void reset() override { counts_.assign(static_cast<size_t>(2 * classes_), 0.0); }
  void update(const runner::BatchOutput& out) override {
    const torch::Tensor& logits = runner::at(*out.outputs, "logits", "metric 'mean_iou' (of the model's outputs)");
    const torch::Tensor& target = runner::at(*out.batch, "target", "metric 'mean_iou' (of the batch's fields)");
    if (logits.size(1) != classes_)
      throw runner::Error("metric 'mean_iou': logits have " + std::to_string(logits.size(1)) +
                          " classes, the dataflow " + std::to_string(classes_));
    const torch::Tensor valid = target.ge(0).logical_and(target.lt(classes_));
    const torch::Tensor pred = logits.argmax(1).masked_select(valid), truth = target.masked_select(valid);
    // Counts per class: predicted, labelled, both; union = predicted + labelled - both.
    const torch::Tensor both = truth.masked_select(pred.eq(truth)).bincount({}, classes_);
    const torch::Tensor cat = torch::stack({both, pred.bincount({}, classes_) + truth.bincount({}, classes_) - both})
                                  .to(torch::kFloat64)
                                  .cpu()
                                  .contiguous();
    const double* c = cat.data_ptr<double>();
    for (int64_t i = 0; i < 2 * classes_; ++i) counts_[static_cast<size_t>(i)] += c[i];
  }
  double compute() const override {
    double sum = 0;
    int64_t present = 0;
    for (int64_t k = 0; k < classes_; ++k) {
      const double inter = counts_[static_cast<size_t>(k)], uni = counts_[static_cast<size_t>(classes_ + k)];
      if (uni > 0) sum += inter / uni, ++present;
    }
    return present > 0 ? sum / static_cast<double>(present) : std::nan("");
  }
  std::vector<double> state() const override { return counts_; }
  void set_state(const std::vector<double>& s) override { counts_ = s; }

 private:
  int64_t classes_;
  std::vector<double> counts_;  ///< intersections [C], then unions [C]
};

runner::Schema schema() { return runner::Schema(); }

std::shared_ptr<runner::Metric> make(const runner::Params&, const runner::MetricContext& ctx) {
  if (ctx.num_classes < 1) throw runner::Error("mean_iou needs the dataflow's number of classes");
  return std::make_shared<MeanIoU>(ctx.num_classes);
}

}  // namespace

RUNNER_REGISTER_METRIC("mean_iou", "mean intersection over union of per-pixel classes (segmentation)", schema, make)
