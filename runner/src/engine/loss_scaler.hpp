#pragma once
// Dynamic loss scaling for float16 autocast (torch.amp.GradScaler's rule): the loss is
// multiplied by `scale` before backward; after the gradients are synchronised they are
// divided by it, and a step whose gradients hold an inf or nan is skipped while the scale
// halves; after `interval` finite steps in a row the scale doubles. The scale, the
// finite check and the update stay on the device (ATen's fused _amp_* kernels); only
// whether to skip the optimizer step is read, once per step (as GradScaler does for
// optimizers without fused kernels). Gradients are identical on every rank when it runs,
// so every rank decides alike. Its state goes into checkpoints.
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
  explicit LossScaler(bool enabled, torch::Device device = torch::kCPU) : LossScaler(enabled, device, Options()) {}
  LossScaler(bool enabled, torch::Device device, Options options);

  bool enabled() const { return enabled_; }
  /// The current scale (a host read).
  double scale() const;
  int64_t skipped_steps() const { return skipped_; }
  /// loss * scale (the loss itself when disabled).
  torch::Tensor scale_loss(const torch::Tensor& loss) const;
  /// Divides every gradient by the scale and checks them on the device; returns whether
  /// all are finite (the step's one host read). If not, the caller skips the optimizer
  /// step. Then call update().
  bool unscale(const std::vector<torch::Tensor>& params);
  /// Backs off or grows the scale from the last unscale's check (on the device).
  void update();

  YAML::Node state() const;
  void load_state(const YAML::Node& state);

 private:
  bool enabled_;
  Options opt_;
  torch::Tensor scale_;           ///< float32 [1] on the device
  torch::Tensor growth_tracker_;  ///< int32 [1]: finite steps in a row
  torch::Tensor found_inf_;       ///< float32 [1]: 1 when the last unscale met inf/nan
  int64_t skipped_ = 0;
};

}  // namespace runner
