#pragma once
// Layers the runner can act on, for model plugins.
//
// runner::nn::BatchNorm2d behaves as torch::nn::BatchNorm2d (same options, parameters,
// buffers and state-dict names, same initialisation) and can synchronise its batch statistics across
// data-parallel ranks: with `dist.sync_batchnorm: true` and more than one rank, each
// training forward computes the mean and variance over the whole global batch (one
// all-reduce of per-channel sums in forward, one in backward), so N ranks of B/N
// samples normalise exactly as one process with B samples. Otherwise (one rank, eval
// mode, or the option off) it is torch::nn::BatchNorm2d. Models that want the option
// use this class instead of torch::nn::BatchNorm2d; nothing else changes.
//
// Every rank must run forward and backward through the same layers in the same order
// (the usual data-parallel contract).
#include <torch/torch.h>

#include <functional>

#include "runner/api.hpp"

namespace runner::nn {

class RUNNER_API BatchNorm2dImpl : public torch::nn::Cloneable<BatchNorm2dImpl> {
 public:
  explicit BatchNorm2dImpl(int64_t num_features) : BatchNorm2dImpl(torch::nn::BatchNorm2dOptions(num_features)) {}
  explicit BatchNorm2dImpl(const torch::nn::BatchNorm2dOptions& options);
  void reset() override;
  void reset_running_stats();
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  /// BatchNorm; on the CPU, for channels_last float32 or bfloat16 input, runner's fused kernel
  /// (uses_fused_kernel: in training without synchronised statistics, in evaluation where no
  /// gradient is recorded), else LibTorch's.
  torch::Tensor forward(const torch::Tensor& input);
  /// relu(forward(input) + residual) (residual optional), as forward, add_ and relu_ would
  /// compute it. Where uses_fused_kernel, it is one fused kernel (a forward that passes over
  /// the activations twice, a backward that recomputes the ReLU's mask); elsewhere, or with
  /// `step.fused_kernels: false`, it is those three LibTorch operators.
  torch::Tensor forward_relu(const torch::Tensor& input, const torch::Tensor& residual = {});
  /// Whether forward and forward_relu take the fused CPU kernel for these tensors (in eval
  /// mode: its one-pass inference form, used under NoGradGuard or InferenceMode).
  bool uses_fused_kernel(const torch::Tensor& input, const torch::Tensor& residual = {}) const;

  torch::nn::BatchNorm2dOptions options;
  torch::Tensor weight, bias;                                    ///< affine parameters
  torch::Tensor running_mean, running_var, num_batches_tracked;  ///< buffers

 private:
  torch::Tensor fused(const torch::Tensor& input, const torch::Tensor& residual, bool relu);
  torch::Tensor inference(const torch::Tensor& input, const torch::Tensor& residual, bool relu) const;
};
TORCH_MODULE(BatchNorm2d);

namespace detail {
/// Set by the host: sums a small tensor over all ranks, differentiably (the backward
/// sums the gradient over ranks). Empty: no synchronisation.
using AllReduceSum = std::function<torch::Tensor(const torch::Tensor&)>;
RUNNER_API void set_batchnorm_sync(AllReduceSum fn);
RUNNER_API const AllReduceSum& batchnorm_sync();
/// Set by the host from `step.fused_kernels` (default on): BatchNorm2d::forward_relu may
/// take its fused CPU kernel.
RUNNER_API void set_fused_batchnorm_relu(bool enabled);
RUNNER_API bool fused_batchnorm_relu();
}  // namespace detail

}  // namespace runner::nn
