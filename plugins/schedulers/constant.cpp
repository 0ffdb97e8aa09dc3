// The optimizer's learning rate, unchanged (optionally scaled by `factor`).
#include <runner/plugin.hpp>

namespace {

class Constant final : public runner::Scheduler {
 public:
  explicit Constant(double lr) : lr_(lr) {}
  double lr(int64_t) const override { return lr_; }

 private:
  double lr_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("factor", runner::ParamType::Float, "multiplier of the optimizer's lr").def(1.0).min(0);
  return s;
}

std::shared_ptr<runner::Scheduler> make(const runner::Params& p, const runner::SchedulerContext& ctx) {
  return std::make_shared<Constant>(ctx.base_lr * p.get<double>("factor"));
}

}  // namespace

RUNNER_REGISTER_SCHEDULER("constant", "the optimizer's lr times factor, throughout", schema, make)
