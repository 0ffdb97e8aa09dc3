#include "engine/loss_scaler.hpp"

#include <ATen/ops/_amp_foreach_non_finite_check_and_unscale.h>
#include <ATen/ops/_amp_update_scale.h>

#include <map>

#include "device/host_read.hpp"
#include "runner/error.hpp"

namespace runner {

LossScaler::LossScaler(bool enabled, torch::Device device, Options options) : enabled_(enabled), opt_(options) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  scale_ = torch::full({1}, opt_.init_scale, f32);
  growth_tracker_ = torch::zeros({1}, f32.dtype(torch::kInt32));
  found_inf_ = torch::zeros({1}, f32);
}

double LossScaler::scale() const { return device::read_value(scale_); }

torch::Tensor LossScaler::scale_loss(const torch::Tensor& loss) const {
  return enabled_ ? loss * scale_.to(loss.scalar_type()).squeeze() : loss;
}

bool LossScaler::unscale(const std::vector<torch::Tensor>& params) {
  if (!enabled_) return true;
  torch::NoGradGuard no_grad;
  found_inf_.zero_();
  const torch::Tensor inv = scale_.to(torch::kFloat64).reciprocal().to(torch::kFloat32);
  std::map<at::ScalarType, std::vector<torch::Tensor>> by_dtype;  // the fused kernel takes one dtype per call
  for (const auto& p : params)
    if (p.grad().defined()) by_dtype[p.grad().scalar_type()].push_back(p.mutable_grad());
  for (auto& [dtype, grads] : by_dtype) at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf_, inv);
  const bool finite = device::read_value(found_inf_) == 0;
  if (!finite) ++skipped_;
  return finite;
}

void LossScaler::update() {
  if (!enabled_) return;
  at::_amp_update_scale_(scale_, growth_tracker_, found_inf_, opt_.growth_factor, opt_.backoff_factor,
                         opt_.growth_interval);
}

YAML::Node LossScaler::state() const {
  YAML::Node n;
  n["scale"] = device::read_value(scale_);
  n["good_steps"] = static_cast<int64_t>(device::read_value(growth_tracker_));
  n["skipped_steps"] = skipped_;
  return n;
}

void LossScaler::load_state(const YAML::Node& n) {
  if (!n || !n.IsMap()) return;
  try {
    scale_.fill_(n["scale"].as<double>());
    growth_tracker_.fill_(n["good_steps"].as<int64_t>());
    skipped_ = n["skipped_steps"].as<int64_t>();
  } catch (const YAML::Exception& e) {
    throw Error(std::string("checkpoint: unreadable loss-scaler state: ") + e.what());
  }
}

}  // namespace runner
