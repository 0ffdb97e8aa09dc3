#pragma once
// `ema:` an exponential moving average of the model's weights: every parameter and
// floating-point buffer (BatchNorm running statistics) is averaged after each optimizer
// step; integer buffers (BatchNorm's batch count) are counters, not weights, and stay the
// model's own. Validation evaluates the average as val_ema/*, checkpoints keep it, and the
// end of a run writes it as <run>/ema_model.pt, in the best models' format.
// Every rank holds the same parameters after the all-reduce, so every rank's average is
// the same; buffers are per rank and evaluation uses rank 0's, as for the model itself.
// Build it after the model's final placement and layout (device, channels_last).
#include <ATen/ops/_foreach_lerp.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "util/parameters.hpp"

namespace runner {

class Ema {
 public:
  Ema(torch::nn::Module& model, double decay) : decay_(decay) {
    torch::NoGradGuard no_grad;
    auto add = [this](const std::string& name, const torch::Tensor& t) {
      if (!t.is_floating_point()) return;
      names_.push_back(name);
      live_.push_back(t);  // the same tensor: load() may re-point its storage
      avg_.push_back(t.detach().clone());
    };
    for (const auto& [name, p] : unique_named_parameters(model)) add(name, p);
    for (const auto& b : model.named_buffers()) add(b.key(), b.value());
  }

  double decay() const { return decay_; }

  /// avg = decay * avg + (1 - decay) * weights: one multi-tensor kernel.
  void update() {
    torch::NoGradGuard no_grad;
    if (!avg_.empty()) at::_foreach_lerp_(avg_, live_, 1.0 - decay_);
  }

  /// The model holds the average while a Swap lives (evaluation, export), its own weights after.
  class Swap {
   public:
    explicit Swap(Ema& ema) : ema_(ema) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < ema_.live_.size(); ++i) {
        saved_.push_back(ema_.live_[i].detach().clone());
        ema_.live_[i].detach().copy_(ema_.avg_[i]);
      }
    }
    ~Swap() {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < saved_.size(); ++i) ema_.live_[i].detach().copy_(saved_[i]);
    }
    Swap(const Swap&) = delete;
    Swap& operator=(const Swap&) = delete;

   private:
    Ema& ema_;
    std::vector<torch::Tensor> saved_;
  };

  void save(torch::serialize::OutputArchive& ar) const {
    for (size_t i = 0; i < names_.size(); ++i) ar.write(names_[i], avg_[i], /*is_buffer=*/true);
  }
  /// False when `ar` lacks a tensor (a checkpoint written without ema): the average then
  /// starts again from the current weights.
  bool load(torch::serialize::InputArchive& ar) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < names_.size(); ++i) {
      torch::Tensor t;
      if (!ar.try_read(names_[i], t, /*is_buffer=*/true)) {
        for (size_t j = 0; j < names_.size(); ++j) avg_[j].copy_(live_[j]);
        return false;
      }
      avg_[i].copy_(t);
    }
    return true;
  }

 private:
  double decay_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> live_, avg_;  ///< the model's floating-point tensors and their averages
};

}  // namespace runner
