#pragma once
// The CPU loops behind runner::nn::BatchNorm2d's fused kernel (bn_relu.cpp): training-mode
// BatchNorm, the optional residual add and the optional ReLU over a channels_last tensor seen as `rows`
// (N*H*W) rows of `channels` contiguous values, float32 or bfloat16 (stored as uint16),
// statistics and parameters in float. Each function splits the rows among `threads`
// threads of LibTorch's OpenMP runtime; per-channel sums come back in double, added in the
// same order for the same thread count. No LibTorch headers here: this file is compiled with
// OpenMP (the only one that is; it links the wheel's libgomp) and its loops with a clone per
// instruction set (AVX-512, AVX2, baseline), picked at load time.
#include <cstdint>

namespace runner::nn::kernels {

enum class Dtype { Float32, BFloat16 };

/// sums[c] = sum(x - shift), sums[channels + c] = sum((x - shift)^2), per channel c.
void shifted_sums(Dtype t, const void* x, int64_t rows, int64_t channels, const float* shift, int threads,
                  double* sums);

/// y = x * scale + shift [+ residual] per channel (residual may be null), then max(y, 0)
/// when `relu`.
void scale_shift(Dtype t, const void* x, const void* residual, void* y, int64_t rows, int64_t channels,
                 const float* scale, const float* shift, bool relu, int threads);

/// The backward's reduction. dz = dy where the ReLU passed, else 0, the ReLU's mask being
/// y > 0 when y is given (the residual form; dz is then also written to dz_out), else
/// x * scale + shift > 0 (`relu`) or none (dz = dy). sums[c] = sum(dz),
/// sums[channels + c] = sum(dz * (x - mean)).
void masked_grad_sums(Dtype t, const void* dy, const void* x, const void* y, void* dz_out, int64_t rows,
                      int64_t channels, const float* scale, const float* shift, const float* mean, bool relu,
                      int threads, double* sums);

/// dx = a * dz + b * (x - mean) + c per channel, dz read from `dz` when given, else
/// recomputed from dy (and the mask x * scale + shift > 0 when `relu`).
void input_grad(Dtype t, const void* dy, const void* dz, const void* x, void* dx, int64_t rows, int64_t channels,
                const float* scale, const float* shift, const float* mean, bool relu, const float* a, const float* b,
                const float* c, int threads);

}  // namespace runner::nn::kernels
