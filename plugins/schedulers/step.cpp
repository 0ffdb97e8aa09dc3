// Multiplies the learning rate by `gamma` every `step_size` (iterations or epochs).
#include <cmath>

#include <runner/plugin.hpp>

namespace {

class Step final : public runner::Scheduler {
 public:
  Step(double base, int64_t step, double gamma) : base_(base), step_(step), gamma_(gamma) {}
  double lr(int64_t i) const override { return base_ * std::pow(gamma_, static_cast<double>(i / step_)); }

 private:
  double base_;
  int64_t step_;
  double gamma_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("step_size", runner::ParamType::Any, "period of decay: iterations (1000) or epochs (2ep)").required();
  s.add("gamma", runner::ParamType::Float, "multiplicative factor").def(0.1).min(0);
  return s;
}

std::shared_ptr<runner::Scheduler> make(const runner::Params& p, const runner::SchedulerContext& ctx) {
  const int64_t step = runner::to_iterations(p.node("step_size"), ctx.iterations_per_epoch, "step_size");
  if (step < 1) throw runner::ParamError("step_size", "must be at least one iteration");
  return std::make_shared<Step>(ctx.base_lr, step, p.get<double>("gamma"));
}

}  // namespace

RUNNER_REGISTER_SCHEDULER("step", "decay by gamma every step_size", schema, make)
