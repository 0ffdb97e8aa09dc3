#pragma once
// `ema:` an exponential moving average of the model's weights: every parameter and
// floating-point buffer (BatchNorm running statistics) is averaged after each optimizer
// step, integer buffers are copied. Validation evaluates it as val_ema/*, checkpoints keep
// it, and the end of a run writes it as <run>/ema_model.pt, in the best models' format.
// Every rank holds the same parameters after the all-reduce, so every rank's average is
// the same; buffers are per rank and evaluation uses rank 0's, as for the model itself.
// Build it after the model's final placement and layout (device, channels_last).
#include <ATen/ops/_foreach_lerp.h>
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace runner {

class Ema {
 public:
  Ema(torch::nn::Module& model, double decay) : decay_(decay) {
    torch::NoGradGuard no_grad;
    for (const auto& p : model.named_parameters()) add(p.key(), p.value());
    for (const auto& b : model.named_buffers()) add(b.key(), b.value());
  }

  double decay() const { return decay_; }

  /// avg = decay * avg + (1 - decay) * weights: one multi-tensor kernel for the floats.
  void update() {
    torch::NoGradGuard no_grad;
    if (!float_avg_.empty()) at::_foreach_lerp_(float_avg_, float_live_, 1.0 - decay_);
    for (size_t i = 0; i < other_avg_.size(); ++i) other_avg_[i].copy_(other_live_[i]);
  }

  /// The model holds the average while a Swap lives (evaluation, export), its own weights after.
  class Swap {
   public:
    explicit Swap(Ema& ema) : ema_(ema) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < ema_.names_.size(); ++i) {
        saved_.push_back(ema_.live(i).clone());
        ema_.live(i).copy_(ema_.avg(i));
      }
    }
    ~Swap() {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < saved_.size(); ++i) ema_.live(i).copy_(saved_[i]);
    }
    Swap(const Swap&) = delete;
    Swap& operator=(const Swap&) = delete;

   private:
    Ema& ema_;
    std::vector<torch::Tensor> saved_;
  };

  void save(torch::serialize::OutputArchive& ar) const {
    for (size_t i = 0; i < names_.size(); ++i) ar.write(names_[i], avg(i), /*is_buffer=*/true);
  }
  /// False when `ar` lacks a tensor (a checkpoint written without ema): the average then
  /// starts again from the current weights.
  bool load(torch::serialize::InputArchive& ar) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < names_.size(); ++i) {
      torch::Tensor t;
      if (!ar.try_read(names_[i], t, /*is_buffer=*/true)) {
        for (size_t j = 0; j < names_.size(); ++j) avg(j).copy_(live(j));
        return false;
      }
      avg(i).copy_(t);
    }
    return true;
  }

 private:
  void add(const std::string& name, const torch::Tensor& t) {
    names_.push_back(name);
    const bool fp = t.is_floating_point();
    where_.emplace_back(fp, fp ? float_avg_.size() : other_avg_.size());
    (fp ? float_live_ : other_live_).push_back(t);  // the same tensor: load() may re-point its storage
    (fp ? float_avg_ : other_avg_).push_back(t.detach().clone());
  }
  torch::Tensor& live(size_t i) {
    return where_[i].first ? float_live_[where_[i].second] : other_live_[where_[i].second];
  }
  const torch::Tensor& avg(size_t i) const {
    return where_[i].first ? float_avg_[where_[i].second] : other_avg_[where_[i].second];
  }
  torch::Tensor& avg(size_t i) { return where_[i].first ? float_avg_[where_[i].second] : other_avg_[where_[i].second]; }

  double decay_;
  std::vector<std::string> names_;
  std::vector<std::pair<bool, size_t>> where_;  ///< per name: floating point?, index in its lists
  std::vector<torch::Tensor> float_live_, float_avg_, other_live_, other_avg_;
};

}  // namespace runner
