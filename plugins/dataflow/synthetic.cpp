// Random tensors of a given shape, for throughput measurements. Each class has a
// fixed random pattern plus per-sample noise, so the task is learnable (a smoke test
// can see the loss fall). Samples are the same every epoch.
#include <runner/plugin.hpp>

namespace {

class SyntheticDataset final : public runner::Dataset {
 public:
  // Class patterns come from `pattern_seed` (shared by train and val), samples from `seed`.
  SyntheticDataset(std::vector<int64_t> shape, int64_t n, int64_t classes, uint64_t pattern_seed, uint64_t seed,
                   double signal)
      : shape_(std::move(shape)), n_(n), classes_(classes), seed_(seed), signal_(signal) {
    numel_ = 1;
    for (int64_t d : shape_) numel_ *= d;
    patterns_.resize(static_cast<size_t>(classes_ * numel_));
    runner::Rng rng(pattern_seed ^ 0xC1A55ull);
    for (auto& v : patterns_) v = static_cast<float>(rng.normal());
  }
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return shape_; }
  void get(int64_t index, float* out, int64_t* target, runner::Rng&) const override {
    runner::Rng rng(runner::splitmix64(seed_) ^ static_cast<uint64_t>(index));
    const int64_t label = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(classes_));
    *target = label;
    const float* pattern = patterns_.data() + label * numel_;
    const float s = static_cast<float>(signal_);
    for (int64_t i = 0; i < numel_; ++i) out[i] = s * pattern[i] + static_cast<float>(rng.normal());
  }

 private:
  std::vector<int64_t> shape_;
  int64_t n_, classes_, numel_;
  uint64_t seed_;
  double signal_;
  std::vector<float> patterns_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("shape", runner::ParamType::List, "shape of one sample [C, H, W]").def(std::vector<int64_t>{1, 28, 28});
  s.add("num_classes", runner::ParamType::Int, "number of classes").def(10).min(2);
  s.add("train_size", runner::ParamType::Int, "training samples per epoch").def(60000).min(1);
  s.add("val_size", runner::ParamType::Int, "validation samples").def(10000).min(1);
  s.add("signal", runner::ParamType::Float, "strength of the class pattern against unit noise").def(0.5).min(0);
  runner::add_loader_params(s, 128);
  return s;
}

runner::Dataflow make(const runner::Params& p, const runner::DataflowContext& ctx) {
  std::vector<int64_t> shape;
  try {
    shape = p.node("shape").as<std::vector<int64_t>>();
  } catch (const YAML::Exception&) {
    throw runner::ParamError("shape", "expected a list of positive integers such as [3, 224, 224]");
  }
  if (shape.empty() || shape.size() > 4)
    throw runner::ParamError("shape", "expected 1 to 4 dimensions, got " + std::to_string(shape.size()));
  for (int64_t d : shape)
    if (d < 1) throw runner::ParamError("shape", "dimensions must be >= 1");
  runner::Dataflow df;
  runner::read_loader_params(p, df);
  df.num_classes = p.get<int64_t>("num_classes");
  const double signal = p.get<double>("signal");
  df.train = std::make_shared<SyntheticDataset>(shape, p.get<int64_t>("train_size"), df.num_classes, ctx.seed, ctx.seed, signal);
  df.val = std::make_shared<SyntheticDataset>(shape, p.get<int64_t>("val_size"), df.num_classes, ctx.seed, ctx.seed + 1, signal);
  df.description = "synthetic";
  return df;
}

}  // namespace

RUNNER_REGISTER_DATAFLOW("synthetic", "random tensors of a given shape with learnable class patterns (benchmarks)",
                         schema, make)
