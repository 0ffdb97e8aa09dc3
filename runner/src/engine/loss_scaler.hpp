#pragma once
// Dynamic loss scaling for float16 autocast (torch.cuda.amp.GradScaler's rule): the
// loss is multiplied by `scale` before backward; after the gradients are synchronised
// they are divided by it, and a step whose gradients hold an inf or nan is skipped
// while the scale halves; after `interval` finite steps in a row the scale doubles.
// Gradients are identical on every rank when it runs, so every rank decides alike.
// Its state goes into checkpoints.
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <vector>

namespace runner {

class LossScaler {
 public:
  struct Options {
    double init_scale = 65536.0;
    double growth_factor = 2.0;
    double backoff_factor = 0.5;
    int64_t growth_interval = 2000;
  };
  explicit LossScaler(bool enabled) : LossScaler(enabled, Options()) {}
  LossScaler(bool enabled, Options options);

  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }
  int64_t skipped_steps() const { return skipped_; }
  /// loss * scale (the loss itself when disabled).
  torch::Tensor scale_loss(const torch::Tensor& loss) const;
  /// Divides every gradient by the scale. Returns whether all of them are finite; if not,
  /// the caller skips the optimizer step. Then call update() with the result.
  bool unscale(const std::vector<torch::Tensor>& params) const;
  void update(bool finite);

  YAML::Node state() const;
  void load_state(const YAML::Node& state);

 private:
  bool enabled_;
  Options opt_;
  double scale_;
  int64_t good_steps_ = 0, skipped_ = 0;
};

}  // namespace runner
