#include "runner/nn.hpp"

namespace runner::nn {
namespace detail {
namespace {
AllReduceSum& sync_fn() {
  static AllReduceSum fn;
  return fn;
}
}  // namespace
void set_batchnorm_sync(AllReduceSum fn) { sync_fn() = std::move(fn); }
const AllReduceSum& batchnorm_sync() { return sync_fn(); }
}  // namespace detail

// LibTorch's BatchNormImplBase is not exported from libtorch, so this is a sibling of
// torch::nn::BatchNorm2dImpl rather than a subclass; it follows its code.
BatchNorm2dImpl::BatchNorm2dImpl(const torch::nn::BatchNorm2dOptions& options_) : options(options_) { reset(); }

void BatchNorm2dImpl::reset() {
  if (options.affine()) {
    weight = register_parameter("weight", torch::empty({options.num_features()}));
    bias = register_parameter("bias", torch::empty({options.num_features()}));
  } else {
    weight = register_parameter("weight", torch::Tensor(), /*requires_grad=*/false);
    bias = register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
  }
  if (options.track_running_stats()) {
    running_mean = register_buffer("running_mean", torch::zeros({options.num_features()}));
    running_var = register_buffer("running_var", torch::ones({options.num_features()}));
    num_batches_tracked = register_buffer("num_batches_tracked", torch::tensor(0, torch::dtype(torch::kLong)));
  } else {
    running_mean = register_buffer("running_mean", torch::Tensor());
    running_var = register_buffer("running_var", torch::Tensor());
    num_batches_tracked = register_buffer("num_batches_tracked", torch::Tensor());
  }
  reset_parameters();
}

void BatchNorm2dImpl::reset_running_stats() {
  if (!options.track_running_stats()) return;
  running_mean.zero_();
  running_var.fill_(1);
  num_batches_tracked.zero_();
}

void BatchNorm2dImpl::reset_parameters() {
  reset_running_stats();
  if (options.affine()) {
    torch::nn::init::ones_(weight);
    torch::nn::init::zeros_(bias);
  }
}

void BatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "runner::nn::BatchNorm2d(" << options.num_features() << ", eps=" << options.eps()
         << ", momentum=" << (options.momentum().has_value() ? std::to_string(*options.momentum()) : "None")
         << ", affine=" << options.affine() << ", track_running_stats=" << options.track_running_stats() << ")";
}

torch::Tensor BatchNorm2dImpl::forward(const torch::Tensor& input) {
  TORCH_CHECK(input.dim() == 4, "BatchNorm2d: expected 4D input (got ", input.dim(), "D input)");
  if (uses_fused_kernel(input)) return fused(input, {}, /*relu=*/false);
  const auto& sync = detail::batchnorm_sync();
  if (!is_training() || !sync || !options.track_running_stats()) {
    double momentum = options.momentum().value_or(0.0);
    if (is_training() && options.track_running_stats()) {
      num_batches_tracked.add_(1);
      if (!options.momentum().has_value()) momentum = 1.0 / num_batches_tracked.item<double>();
    }
    return torch::batch_norm(input, weight, bias, running_mean, running_var,
                             is_training() || !options.track_running_stats(), momentum, options.eps(),
                             at::globalContext().userEnabledCuDNN());
  }
  const int64_t channels = input.size(1);
  const double local_n = static_cast<double>(input.numel() / std::max<int64_t>(channels, 1));
  // Per-channel sums and sums of squares plus the element count, summed over ranks.
  const auto x = input.to(torch::kFloat32);
  torch::Tensor stats = torch::cat(
      {x.sum({0, 2, 3}), (x * x).sum({0, 2, 3}), torch::full({1}, local_n, x.options().requires_grad(false))});
  stats = sync(stats);
  const torch::Tensor n = stats.narrow(0, 2 * channels, 1).detach();
  const torch::Tensor mean = stats.narrow(0, 0, channels) / n;
  const torch::Tensor var = (stats.narrow(0, channels, channels) / n - mean * mean).clamp_min(0);
  {  // on the device: no host read per layer (the count travels inside `stats`)
    torch::NoGradGuard no_grad;
    num_batches_tracked.add_(1);
    const torch::Tensor momentum = options.momentum().has_value() ? torch::full({}, *options.momentum(), mean.options())
                                                                  : 1.0 / num_batches_tracked.to(mean.scalar_type());
    const torch::Tensor unbiased = var.detach() * (n / (n - 1).clamp_min(1));
    running_mean.mul_(1 - momentum.to(running_mean.dtype())).add_((mean.detach() * momentum).to(running_mean.dtype()));
    running_var.mul_(1 - momentum.to(running_var.dtype())).add_((unbiased * momentum).to(running_var.dtype()));
  }
  auto shape = [&](const torch::Tensor& t) { return t.view({1, channels, 1, 1}); };
  torch::Tensor y = (x - shape(mean)) * shape(torch::rsqrt(var + options.eps()));
  if (options.affine()) y = y * shape(weight) + shape(bias);
  return y.to(input.scalar_type());
}

}  // namespace runner::nn
