// runner::nn::BatchNorm2d's fused kernel: bn(x), or relu(bn(x) [+ residual]) (forward_relu),
// in training mode as one autograd node with CPU loops of its own (bn_relu_kernels.cpp), for
// channels_last float32 and bfloat16 activations. LibTorch runs the same thing as up to four
// operators whose CPU kernels each pass over the tensor several times (batch_norm, add_,
// relu_ and their backwards); here the forward reads x twice and writes y once, and the
// backward recomputes the ReLU's mask from x (or reads it from y when a residual was added)
// instead of materialising the BatchNorm output's gradient.
#include <ATen/Parallel.h>
#include <ATen/record_function.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "bn_relu_kernels.hpp"
#include "runner/nn.hpp"

namespace runner::nn {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
constexpr auto kNhwc = at::MemoryFormat::ChannelsLast;

bool& fused_enabled() {
  static bool enabled = true;
  return enabled;
}

kernels::Dtype kernel_dtype(const Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 ? kernels::Dtype::BFloat16 : kernels::Dtype::Float32;
}

Tensor floats(const std::vector<float>& v) { return torch::tensor(v, torch::dtype(torch::kFloat32)); }

// x's first row (its first `channels` values, channels_last) in float: the shift of the sums.
std::vector<float> first_row(const Tensor& x, int64_t channels) {
  std::vector<float> row(channels);
  if (x.scalar_type() == torch::kBFloat16) {
    const at::BFloat16* p = x.data_ptr<at::BFloat16>();
    for (int64_t c = 0; c < channels; ++c) row[c] = static_cast<float>(p[c]);
  } else {
    std::copy_n(x.data_ptr<float>(), channels, row.begin());
  }
  return row;
}

// running = running * (1 - momentum) + batch * momentum * factor, in float as LibTorch's
// mul_ and add_ (alpha) compute it, without their dispatches (float32, contiguous:
// uses_fused_kernel).
void update_running(const Tensor& running, const std::vector<float>& batch, double momentum, double factor) {
  float* r = running.data_ptr<float>();
  const float keep = static_cast<float>(1 - momentum), alpha = static_cast<float>(momentum * factor);
  for (size_t c = 0; c < batch.size(); ++c) r[c] = std::fma(alpha, batch[c], r[c] * keep);
}

struct BatchNormReluFunction : public torch::autograd::Function<BatchNormReluFunction> {
  static Tensor forward(AutogradContext* ctx, const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const std::optional<Tensor>& residual_in, bool relu, Tensor running_mean, Tensor running_var,
                        double momentum, double eps) {
    RECORD_FUNCTION("runner::batch_norm_relu", std::vector<c10::IValue>({input}));
    const Tensor x = input.contiguous(kNhwc);
    const Tensor residual = residual_in ? residual_in->to(x.scalar_type()).contiguous(kNhwc) : Tensor();
    const int64_t channels = x.size(1), rows = x.numel() / channels;
    const int threads = at::get_num_threads();
    const std::vector<float> shift0 = first_row(x, channels);
    std::vector<double> sums(2 * channels);
    kernels::shifted_sums(kernel_dtype(x), x.data_ptr(), rows, channels, shift0.data(), threads, sums.data());
    const Tensor w = weight.contiguous(), b = bias.contiguous();  // float32 (uses_fused_kernel)
    std::vector<float> mean(channels), invstd(channels), var(channels), scale(channels), shift(channels);
    for (int64_t c = 0; c < channels; ++c) {
      const double d = sums[c] / rows, v = std::max(sums[channels + c] / rows - d * d, 0.0);
      mean[c] = static_cast<float>(shift0[c] + d);
      var[c] = static_cast<float>(v);
      invstd[c] = static_cast<float>(1.0 / std::sqrt(v + eps));
      scale[c] = w.data_ptr<float>()[c] * invstd[c];
      shift[c] = b.data_ptr<float>()[c] - mean[c] * scale[c];
    }
    Tensor y = at::empty_like(x, kNhwc);
    kernels::scale_shift(kernel_dtype(x), x.data_ptr(), residual.defined() ? residual.data_ptr() : nullptr,
                         y.data_ptr(), rows, channels, scale.data(), shift.data(), relu, threads);
    if (running_mean.defined()) {
      update_running(running_mean, mean, momentum, 1.0);
      update_running(running_var, var, momentum, rows > 1 ? static_cast<double>(rows) / (rows - 1) : 1.0);
    }
    ctx->save_for_backward({x, w, residual.defined() ? y : Tensor()});
    std::vector<float> stats = mean;  // mean, invstd, scale, shift: one tensor
    for (const auto* v : {&invstd, &scale, &shift}) stats.insert(stats.end(), v->begin(), v->end());
    ctx->saved_data["stats"] = floats(stats);
    ctx->saved_data["relu"] = relu;
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    RECORD_FUNCTION("runner::batch_norm_relu_backward", std::vector<c10::IValue>({grads[0]}));
    const variable_list saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &w = saved[1], &y = saved[2];
    const Tensor dy = grads[0].to(x.scalar_type()).contiguous(kNhwc);
    const int64_t channels = x.size(1), rows = x.numel() / channels;
    const int threads = at::get_num_threads();
    const Tensor stats = ctx->saved_data["stats"].toTensor();
    const float *mean = stats.data_ptr<float>(), *invstd = mean + channels, *scale = invstd + channels,
                *shift = scale + channels;
    const bool residual = y.defined(), relu = ctx->saved_data["relu"].toBool();
    const Tensor dz = residual ? at::empty_like(x, kNhwc) : Tensor();
    std::vector<double> sums(2 * channels);
    kernels::masked_grad_sums(kernel_dtype(x), dy.data_ptr(), x.data_ptr(), residual ? y.data_ptr() : nullptr,
                              residual ? dz.data_ptr() : nullptr, rows, channels, scale, shift, mean, relu, threads,
                              sums.data());
    std::vector<float> a(channels), b(channels), c0(channels), dweight(channels), dbias(channels);
    for (int64_t c = 0; c < channels; ++c) {
      const double is = invstd[c], k = w.data_ptr<float>()[c] * is;
      a[c] = static_cast<float>(k);
      b[c] = static_cast<float>(-k * is * is * sums[channels + c] / rows);
      c0[c] = static_cast<float>(-k * sums[c] / rows);
      dbias[c] = static_cast<float>(sums[c]);
      dweight[c] = static_cast<float>(sums[channels + c] * is);
    }
    Tensor dx = at::empty_like(x, kNhwc);
    kernels::input_grad(kernel_dtype(x), dy.data_ptr(), residual ? dz.data_ptr() : nullptr, x.data_ptr(), dx.data_ptr(),
                        rows, channels, scale, shift, mean, relu, a.data(), b.data(), c0.data(), threads);
    return {dx,       floats(dweight), floats(dbias), residual ? dz : Tensor(), Tensor(), Tensor(),
            Tensor(), Tensor(),        Tensor()};
  }
};

}  // namespace

namespace detail {
void set_fused_batchnorm_relu(bool enabled) { fused_enabled() = enabled; }
bool fused_batchnorm_relu() { return fused_enabled(); }
}  // namespace detail

bool BatchNorm2dImpl::uses_fused_kernel(const Tensor& input, const Tensor& residual) const {
  const auto is_float = [](const Tensor& t) { return t.scalar_type() == torch::kFloat32; };
  const bool activation = input.scalar_type() == torch::kFloat32 || input.scalar_type() == torch::kBFloat16;
  // Training: not with synchronised statistics. Evaluation: only where no gradient is recorded
  // (the inference form has no backward).
  const bool records_grad =
      at::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad() || bias.requires_grad() ||
                                     (residual.defined() && residual.requires_grad()));
  const bool mode = is_training() ? !detail::batchnorm_sync() : !records_grad;
  return fused_enabled() && mode && options.affine() && options.track_running_stats() && input.device().is_cpu() &&
         input.dim() == 4 && activation && input.is_contiguous(kNhwc) && input.numel() > 0 && is_float(weight) &&
         is_float(bias) && is_float(running_mean) && is_float(running_var) && running_mean.is_contiguous() &&
         running_var.is_contiguous() && weight.device().is_cpu() &&
         (!residual.defined() || (residual.device().is_cpu() && residual.sizes() == input.sizes()));
}

Tensor BatchNorm2dImpl::forward_relu(const Tensor& input, const Tensor& residual) {
  if (uses_fused_kernel(input, residual)) return fused(input, residual, /*relu=*/true);
  Tensor y = forward(input);
  if (residual.defined()) y = y.add_(residual);
  return y.relu_();
}

Tensor BatchNorm2dImpl::fused(const Tensor& input, const Tensor& residual, bool relu) {
  if (!is_training()) return inference(input, residual, relu);
  num_batches_tracked.add_(1);
  const double momentum =
      options.momentum().has_value() ? *options.momentum() : 1.0 / num_batches_tracked.item<double>();
  return BatchNormReluFunction::apply(input, weight, bias,
                                      residual.defined() ? std::optional<Tensor>(residual) : std::nullopt, relu,
                                      running_mean, running_var, momentum, options.eps());
}

// Evaluation: y = x * scale + shift [+ residual], then the ReLU, in one pass, with scale and
// shift from the running statistics as LibTorch's CPU batch_norm computes them (scale =
// weight * invstd, invstd = 1 / sqrt(running_var + eps), shift = bias - running_mean * scale),
// where LibTorch passes over the tensor once per operator (batch_norm, add_, relu_).
Tensor BatchNorm2dImpl::inference(const Tensor& input, const Tensor& residual, bool relu) const {
  RECORD_FUNCTION("runner::batch_norm_relu_inference", std::vector<c10::IValue>({input}));
  const Tensor x = input.contiguous(kNhwc);
  const Tensor r = residual.defined() ? residual.to(x.scalar_type()).contiguous(kNhwc) : Tensor();
  const int64_t channels = x.size(1), rows = x.numel() / channels;
  const Tensor w = weight.contiguous(), b = bias.contiguous(), m = running_mean.contiguous(),
               v = running_var.contiguous();
  const float *wp = w.data_ptr<float>(), *bp = b.data_ptr<float>(), *mp = m.data_ptr<float>(),
              *vp = v.data_ptr<float>();
  std::vector<float> scale(channels), shift(channels);
  for (int64_t c = 0; c < channels; ++c) {
    scale[c] = wp[c] * (1.0f / std::sqrt(vp[c] + static_cast<float>(options.eps())));  // invstd * weight
    shift[c] = bp[c] - mp[c] * scale[c];
  }
  Tensor y = at::empty_like(x, kNhwc);
  kernels::scale_shift(kernel_dtype(x), x.data_ptr(), r.defined() ? r.data_ptr() : nullptr, y.data_ptr(), rows,
                       channels, scale.data(), shift.data(), relu, at::get_num_threads());
  return y;
}

}  // namespace runner::nn
