// Multiplies the learning rate by `gamma` at each milestone (iterations or epochs).
#include <algorithm>
#include <cmath>

#include <runner/plugin.hpp>

namespace {

class MultiStep final : public runner::Scheduler {
 public:
  MultiStep(double base, std::vector<int64_t> milestones, double gamma)
      : base_(base), milestones_(std::move(milestones)), gamma_(gamma) {}
  double lr(int64_t i) const override {
    const auto passed = std::upper_bound(milestones_.begin(), milestones_.end(), i) - milestones_.begin();
    return base_ * std::pow(gamma_, static_cast<double>(passed));
  }

 private:
  double base_;
  std::vector<int64_t> milestones_;
  double gamma_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("milestones", runner::ParamType::List, "times of decay, increasing: iterations (1000) or epochs (2ep)")
      .required();
  s.add("gamma", runner::ParamType::Float, "multiplicative factor").def(0.1).min(0);
  return s;
}

std::shared_ptr<runner::Scheduler> make(const runner::Params& p, const runner::SchedulerContext& ctx) {
  std::vector<int64_t> ms;
  for (const auto& m : p.node("milestones")) {
    ms.push_back(runner::to_iterations(m, ctx.iterations_per_epoch, "milestones"));
    if (ms.size() > 1 && ms.back() <= ms[ms.size() - 2])
      throw runner::ParamError("milestones", "must be strictly increasing");
  }
  return std::make_shared<MultiStep>(ctx.base_lr, std::move(ms), p.get<double>("gamma"));
}

}  // namespace

RUNNER_REGISTER_SCHEDULER("multistep", "decay by gamma at each milestone", schema, make)
