// Random tensors of a given shape, for throughput measurements. Each class has a
// fixed random pattern plus per-sample noise, so the task is learnable (a smoke test
// can see the loss fall). Samples are the same every epoch. The defaults are
// ImageNet-shaped (3x224x224, 1000 classes). Small shapes draw fresh noise per value;
// large ones (more than 65,536 values per sample, or patterns over 4M values) read
// patterns and noise from fixed random banks at per-sample offsets, so a sample costs
// about a copy and a 224x224 stream keeps up with a GPU.
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
    banked_ = numel_ > kMaxFreshNumel || classes_ * numel_ > kBank;
    patterns_.resize(static_cast<size_t>(banked_ ? kBank : classes_ * numel_));
    runner::Rng rng(pattern_seed ^ 0xC1A55ull);
    for (auto& v : patterns_) v = static_cast<float>(rng.normal());
    if (banked_) {
      noise_.resize(static_cast<size_t>(kBank));
      runner::Rng noise_rng(seed ^ 0x9015Eull);
      for (auto& v : noise_) v = static_cast<float>(noise_rng.normal());
    }
  }
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return shape_; }
  void get(int64_t index, float* out, int64_t* target, runner::Rng&) const override {
    runner::Rng rng(runner::splitmix64(seed_) ^ static_cast<uint64_t>(index));
    const int64_t label = static_cast<int64_t>(rng.next() % static_cast<uint64_t>(classes_));
    *target = label;
    const float s = static_cast<float>(signal_);
    if (!banked_) {
      const float* pattern = patterns_.data() + label * numel_;
      for (int64_t i = 0; i < numel_; ++i) out[i] = s * pattern[i] + static_cast<float>(rng.normal());
      return;
    }
    // Offsets: the class's pattern (a fixed function of the label), the sample's noise.
    int64_t p = static_cast<int64_t>(runner::splitmix64(0xC1A55ull + label) % kBank);
    int64_t q = static_cast<int64_t>(rng.next() % kBank);
    for (int64_t i = 0; i < numel_; ++i) {
      out[i] = s * patterns_[p] + noise_[q];
      if (++p == kBank) p = 0;
      if (++q == kBank) q = 0;
    }
  }

 private:
  std::vector<int64_t> shape_;
  int64_t n_, classes_, numel_;
  uint64_t seed_;
  double signal_;
  static constexpr int64_t kBank = int64_t(1) << 22;  // 4M values (16 MB)
  static constexpr int64_t kMaxFreshNumel = int64_t(1) << 16;
  bool banked_ = false;
  std::vector<float> patterns_, noise_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("shape", runner::ParamType::List, "shape of one sample [C, H, W]").def(std::vector<int64_t>{3, 224, 224});
  s.add("num_classes", runner::ParamType::Int, "number of classes").def(1000).min(2);
  s.add("train_size", runner::ParamType::Int, "training samples per epoch").def(12800).min(1);
  s.add("val_size", runner::ParamType::Int, "validation samples").def(1000).min(1);
  s.add("signal", runner::ParamType::Float, "strength of the class pattern against unit noise").def(0.5).min(0);
  runner::add_loader_params(s, 64);
  return s;
}

std::string join_shape(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += (s.empty() ? "" : "x") + std::to_string(d);
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
  df.train = std::make_shared<SyntheticDataset>(shape, p.get<int64_t>("train_size"), df.num_classes, ctx.seed, ctx.seed,
                                                signal);
  df.val = std::make_shared<SyntheticDataset>(shape, p.get<int64_t>("val_size"), df.num_classes, ctx.seed, ctx.seed + 1,
                                              signal);
  df.description = "synthetic " + join_shape(shape) + ", " + std::to_string(df.num_classes) + " classes";
  return df;
}

}  // namespace

RUNNER_REGISTER_DATAFLOW("synthetic", "random tensors of a given shape with learnable class patterns (benchmarks)",
                         schema, make)
