#pragma once
// Arrays in the files PyTorch and numpy users exchange: .npy (numpy's format) and
// .safetensors (Hugging Face's: a JSON header of name -> dtype, shape, offsets, then the
// data). Reading keeps the file's dtype; every error is a runner::Error naming the file.
#include <torch/torch.h>

#include <map>
#include <string>

#include "runner/api.hpp"

namespace runner {

/// A little-endian, C-ordered .npy array (format 1-3): float16/32/64, int8/16/32/64,
/// uint8 or bool.
RUNNER_API torch::Tensor read_npy(const std::string& path);
/// Writes `t` (made contiguous, on the CPU) as a .npy file (format 1.0).
RUNNER_API void write_npy(const std::string& path, const torch::Tensor& t);

/// Every tensor of a .safetensors file, by name (the `__metadata__` entry is skipped).
RUNNER_API std::map<std::string, torch::Tensor> read_safetensors(const std::string& path);
/// Writes `tensors` (each made contiguous, on the CPU) as a .safetensors file, in name order.
RUNNER_API void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors);

}  // namespace runner
