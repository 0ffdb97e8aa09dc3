// Piecewise-linear learning rate through (iteration, value) milestones, as Ignite's
// PiecewiseLinear: constant before the first and after the last milestone. Times are
// iterations (500) or epochs (1ep, 0.5ep); values are absolute learning rates.
#include <runner/plugin.hpp>

namespace {

class PiecewiseLinear final : public runner::Scheduler {
 public:
  explicit PiecewiseLinear(std::vector<std::pair<int64_t, double>> points) : points_(std::move(points)) {}
  double lr(int64_t i) const override {
    if (i <= points_.front().first) return points_.front().second;
    for (size_t k = 1; k < points_.size(); ++k) {
      const auto& [t1, v1] = points_[k];
      if (i <= t1) {
        const auto& [t0, v0] = points_[k - 1];
        if (t1 == t0) return v1;
        return v0 + (v1 - v0) * static_cast<double>(i - t0) / static_cast<double>(t1 - t0);
      }
    }
    return points_.back().second;
  }

 private:
  std::vector<std::pair<int64_t, double>> points_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("milestones", runner::ParamType::List,
        "[[time, lr], ...]; time in iterations (500) or epochs (1ep), increasing")
      .required();
  return s;
}

std::shared_ptr<runner::Scheduler> make(const runner::Params& p, const runner::SchedulerContext& ctx) {
  const YAML::Node list = p.node("milestones");
  std::vector<std::pair<int64_t, double>> points;
  for (size_t k = 0; k < list.size(); ++k) {
    const std::string where = "milestones[" + std::to_string(k) + "]";
    const YAML::Node m = list[k];
    if (!m.IsSequence() || m.size() != 2)
      throw runner::ParamError("milestones", where + ": expected a pair [time, lr] such as [1ep, 0.1]");
    const int64_t t = runner::to_iterations(m[0], ctx.iterations_per_epoch, "milestones");
    double v = 0;
    try {
      v = m[1].as<double>();
    } catch (const YAML::Exception&) {
      throw runner::ParamError("milestones", where + ": the learning rate must be a number");
    }
    if (v < 0) throw runner::ParamError("milestones", where + ": the learning rate must be >= 0");
    if (!points.empty() && t < points.back().first)
      throw runner::ParamError("milestones", where + ": times must not decrease (" + std::to_string(t) + " < " +
                                                 std::to_string(points.back().first) + " iterations)");
    points.emplace_back(t, v);
  }
  if (points.empty()) throw runner::ParamError("milestones", "needs at least one [time, lr] pair");
  return std::make_shared<PiecewiseLinear>(std::move(points));
}

}  // namespace

RUNNER_REGISTER_SCHEDULER("piecewise_linear",
                          "linear interpolation between [time, lr] milestones (Ignite's PiecewiseLinear)", schema, make)
