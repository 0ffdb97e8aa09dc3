// Cosine annealing from the optimizer's lr to `min_lr` over the run, after an optional
// linear warmup from `warmup_start_lr`.
#include <cmath>

#include <runner/plugin.hpp>

namespace {

class Cosine final : public runner::Scheduler {
 public:
  Cosine(double base, double min_lr, double warm_start, int64_t warmup, int64_t total)
      : base_(base), min_(min_lr), warm_start_(warm_start), warmup_(warmup), total_(total) {}
  double lr(int64_t i) const override {
    if (i < warmup_) return warm_start_ + (base_ - warm_start_) * static_cast<double>(i) / static_cast<double>(warmup_);
    const int64_t span = std::max<int64_t>(1, total_ - warmup_);
    const double t = std::min(1.0, static_cast<double>(i - warmup_) / static_cast<double>(span));
    return min_ + (base_ - min_) * 0.5 * (1.0 + std::cos(M_PI * t));
  }

 private:
  double base_, min_, warm_start_;
  int64_t warmup_, total_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("warmup", runner::ParamType::Any, "linear warmup length: iterations (500) or epochs (1ep)").def(0);
  s.add("warmup_start_lr", runner::ParamType::Float, "learning rate at the start of the warmup").def(0.0).min(0);
  s.add("min_lr", runner::ParamType::Float, "learning rate at the end of the run").def(0.0).min(0);
  return s;
}

std::shared_ptr<runner::Scheduler> make(const runner::Params& p, const runner::SchedulerContext& ctx) {
  const int64_t warmup = runner::to_iterations(p.node("warmup"), ctx.iterations_per_epoch, "warmup");
  if (warmup > ctx.total_iterations)
    throw runner::ParamError("warmup", "is longer than the run (" + std::to_string(warmup) + " > " +
                                           std::to_string(ctx.total_iterations) + " iterations)");
  return std::make_shared<Cosine>(ctx.base_lr, p.get<double>("min_lr"), p.get<double>("warmup_start_lr"), warmup,
                                  ctx.total_iterations);
}

}  // namespace

RUNNER_REGISTER_SCHEDULER("cosine", "cosine annealing to min_lr over the run, with optional linear warmup", schema,
                          make)
