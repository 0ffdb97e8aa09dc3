#pragma once
// Numeric format of the training step: autocast (amp: bf16 | fp16) and the NHWC memory
// layout (channels_last), on the CPU (bf16) or a CUDA device (bf16, fp16).
#include <torch/torch.h>

#include <string>

#include "runner/components.hpp"

namespace runner {

/// While alive, eligible ops (convolutions, matmuls) run in the amp dtype; "none" does
/// nothing. Nests like torch.autocast; the autocast weight cache is cleared when the
/// outermost scope ends.
class AutocastScope {
 public:
  AutocastScope(const std::string& amp, torch::Device device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_ = false;
  at::DeviceType type_ = at::kCPU;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

/// Why `amp` cannot run on `device`, or "" when it can.
std::string amp_unsupported(const std::string& amp, torch::Device device);

/// Converts every 4-D parameter and buffer of `module` to channels_last in place (the
/// tensors keep their identity, so optimizers built before still see them).
void to_channels_last(torch::nn::Module& module);

/// Rows [lo, hi) of every field of `batch`, with 4-D floating-point fields (images) made
/// channels_last when `channels_last` is set: what the model's forward_batch gets.
TensorDict model_inputs(const TensorDict& batch, int64_t lo, int64_t hi, bool channels_last);

/// The outputs with every floating-point tensor in float32 (autocast's bf16/fp16 outputs),
/// as the criterion and the metrics get them.
TensorDict to_float32(TensorDict outputs);

}  // namespace runner
