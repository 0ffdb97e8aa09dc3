#include "engine/precision.hpp"

#include <ATen/autocast_mode.h>

#include "util/parameters.hpp"

namespace runner {

AutocastScope::AutocastScope(const std::string& amp, torch::Device device)
    : on_(amp == "bf16" || amp == "fp16"), type_(device.type()) {
  if (!on_) return;
  prev_enabled_ = at::autocast::is_autocast_enabled(type_);
  prev_dtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, amp == "fp16" ? at::kHalf : at::kBFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!on_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(type_, prev_enabled_);
  at::autocast::set_autocast_dtype(type_, prev_dtype_);
}

std::string amp_unsupported(const std::string& amp, torch::Device device) {
  if (amp == "fp16" && !device.is_cuda())
    return "fp16 autocast needs a CUDA device and this run is on the CPU (LibTorch " TORCH_VERSION
           "); on the CPU use amp: bf16";
  return "";
}

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  // Restrided, not `contiguous(ChannelsLast)`: with one input channel (a 16x1x3x3 stem) a
  // tensor is contiguous in both layouts, `contiguous` keeps the NCHW strides, and oneDNN then
  // runs the stem in NCHW, so every later layer converts back (measured on resnet8: 1.8x the
  // step time of torch.nn.Module.to(memory_format=channels_last), which restrides like this).
  auto convert = [](torch::Tensor& t) {
    if (t.defined() && t.dim() == 4) t.set_data(torch::empty_like(t, at::MemoryFormat::ChannelsLast).copy_(t));
  };
  for (auto& p : unique_parameters(module)) convert(p);
  for (auto& b : module.buffers()) convert(b);
}

TensorDict model_inputs(const TensorDict& batch, int64_t lo, int64_t hi, bool channels_last) {
  TensorDict out;
  for (const auto& [name, t] : batch) {
    const bool whole = lo == 0 && hi == t.size(0);
    torch::Tensor part = whole ? t : t.slice(0, lo, hi);
    if (channels_last && part.dim() == 4 && part.is_floating_point())
      part = part.contiguous(at::MemoryFormat::ChannelsLast);
    out.emplace(name, std::move(part));
  }
  return out;
}

TensorDict to_float32(TensorDict outputs) {
  for (auto& [name, t] : outputs)
    if (t.is_floating_point() && t.scalar_type() != torch::kFloat32) t = t.to(torch::kFloat32);
  return outputs;
}

}  // namespace runner
