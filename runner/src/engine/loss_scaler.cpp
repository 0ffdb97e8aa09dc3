#include "engine/loss_scaler.hpp"

#include "runner/error.hpp"

namespace runner {

LossScaler::LossScaler(bool enabled, Options options) : enabled_(enabled), opt_(options), scale_(options.init_scale) {}

torch::Tensor LossScaler::scale_loss(const torch::Tensor& loss) const { return enabled_ ? loss * scale_ : loss; }

bool LossScaler::unscale(const std::vector<torch::Tensor>& params) const {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  const double inv = 1.0 / scale_;
  std::vector<torch::Tensor> sums;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    torch::Tensor g = p.mutable_grad();
    g.mul_(inv);
    sums.push_back(g.sum().to(torch::kFloat32));  // inf or nan anywhere makes the sum non-finite
  }
  if (sums.empty()) return true;
  return torch::stack(sums).isfinite().all().item<bool>();  // one host sync per step
}

void LossScaler::update(bool finite) {
  if (!enabled_) return;
  if (!finite) {
    scale_ *= opt_.backoff_factor;
    good_steps_ = 0;
    ++skipped_;
    return;
  }
  if (++good_steps_ >= opt_.growth_interval) {
    scale_ *= opt_.growth_factor;
    good_steps_ = 0;
  }
}

YAML::Node LossScaler::state() const {
  YAML::Node n;
  n["scale"] = scale_;
  n["good_steps"] = good_steps_;
  n["skipped_steps"] = skipped_;
  return n;
}

void LossScaler::load_state(const YAML::Node& n) {
  if (!n || !n.IsMap()) return;
  try {
    scale_ = n["scale"].as<double>();
    good_steps_ = n["good_steps"].as<int64_t>();
    skipped_ = n["skipped_steps"].as<int64_t>();
  } catch (const YAML::Exception& e) {
    throw Error(std::string("checkpoint: unreadable loss-scaler state: ") + e.what());
  }
}

}  // namespace runner
