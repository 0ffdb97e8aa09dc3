// runner::nn::BatchNorm2d::forward_relu: the fused CPU kernel against LibTorch's own
// batch_norm, add_ and relu_ (the same module with the kernel turned off).
#include <optional>

#include "runner/nn.hpp"
#include "test_util.hpp"

namespace {

using torch::Tensor;

/// max |a - b| / max |b| for float32; sum |a - b| / sum |b| for bfloat16, where a ReLU's
/// mask may flip for values within an ulp of zero (LibTorch rounds the BatchNorm output to
/// bfloat16 before the add and the ReLU, the kernel rounds once), which moves single elements.
double relative_difference(const Tensor& a, const Tensor& b) {
  const Tensor x = a.to(torch::kFloat64), y = b.to(torch::kFloat64);
  if (a.scalar_type() == torch::kBFloat16) return (x - y).abs().sum().item<double>() / y.abs().sum().item<double>();
  return (x - y).abs().max().item<double>() / std::max(y.abs().max().item<double>(), 1e-30);
}

struct Case {
  std::vector<int64_t> shape;
  torch::ScalarType dtype;
  bool residual;
  std::optional<double> momentum;
  bool relu = true;  // false: forward() alone (no residual)
};

struct Outcome {
  Tensor y, dx, dweight, dbias, dresidual, running_mean, running_var, batches;
  bool fused;
};

// Two training steps' forwards (the running statistics move twice) and one backward.
Outcome run(const Case& c, bool fused) {
  runner::nn::detail::set_fused_batchnorm_relu(fused);
  torch::manual_seed(3);
  auto opts = torch::nn::BatchNorm2dOptions(c.shape[1]).momentum(c.momentum);
  runner::nn::BatchNorm2d bn(opts);
  {
    torch::NoGradGuard no_grad;
    bn->weight.uniform_(0.5, 1.5);
    bn->bias.normal_();
  }
  const auto layout = torch::MemoryFormat::ChannelsLast;
  Tensor x = (torch::randn(c.shape) * 3 + 2).to(c.dtype).contiguous(layout).requires_grad_();
  Tensor r = torch::randn(c.shape).to(c.dtype).contiguous(layout).requires_grad_();
  const Tensor g = torch::randn(c.shape).to(c.dtype).contiguous(layout);
  Outcome o;
  o.fused = bn->uses_fused_kernel(x, c.residual ? r : Tensor());
  const auto step = [&](const Tensor& in, const Tensor& res) {
    return c.relu ? bn->forward_relu(in, res) : bn->forward(in);
  };
  step(x.detach() * 0.5, c.residual ? r.detach() : Tensor());
  o.y = step(x, c.residual ? r : Tensor());
  o.y.backward(g);
  o.dx = x.grad();
  o.dweight = bn->weight.grad();
  o.dbias = bn->bias.grad();
  o.dresidual = c.residual ? r.grad() : Tensor();
  o.running_mean = bn->running_mean.clone();
  o.running_var = bn->running_var.clone();
  o.batches = bn->num_batches_tracked.clone();
  runner::nn::detail::set_fused_batchnorm_relu(true);
  return o;
}

}  // namespace

TEST_SUITE("nn") {
  TEST_CASE("BatchNorm2d: the fused CPU kernel equals batch_norm (+ add_ + relu_) and their backward") {
    const std::vector<Case> cases = {
        {{8, 16, 5, 7}, torch::kFloat32, false, 0.1},
        {{8, 16, 5, 7}, torch::kFloat32, true, 0.1},
        {{4, 24, 3, 3}, torch::kFloat32, true, std::nullopt},  // 24 channels: a vector's tail
        {{3, 5, 9, 2}, torch::kFloat32, false, 0.3},
        {{64, 64, 4, 4}, torch::kFloat32, true, 0.1},
        {{3, 16, 5, 5}, torch::kFloat32, true, 0.1},  // 75 rows: an odd row after the paired ones
        {{3, 16, 5, 5}, torch::kFloat32, false, 0.1},
        {{8, 16, 5, 7}, torch::kBFloat16, false, 0.1},
        {{8, 16, 5, 7}, torch::kBFloat16, true, 0.1},
        {{4, 24, 3, 3}, torch::kBFloat16, true, 0.1},
        {{3, 16, 5, 5}, torch::kBFloat16, false, 0.1},
        {{8, 16, 5, 7}, torch::kFloat32, false, 0.1, false},  // BatchNorm alone (forward)
        {{4, 24, 3, 3}, torch::kFloat32, false, std::nullopt, false},
        {{8, 16, 5, 7}, torch::kBFloat16, false, 0.1, false},
    };
    for (const Case& c : cases) {
      const std::string shape = c10::str(c10::IntArrayRef(c.shape));
      CAPTURE(shape);
      const std::string dtype = c10::toString(c.dtype);
      CAPTURE(dtype);
      CAPTURE(c.residual);
      CAPTURE(c.relu);
      const Outcome fused = run(c, true), plain = run(c, false);
      CHECK(fused.fused);
      CHECK_FALSE(plain.fused);
      const double tol = c.dtype == torch::kBFloat16 ? 1e-2 : 2e-5;  // a bfloat16 ulp is 2^-8
      CHECK((fused.y.scalar_type() == c.dtype));
      CHECK(fused.y.is_contiguous(torch::MemoryFormat::ChannelsLast));
      CHECK(relative_difference(fused.y, plain.y) < tol);
      CHECK(relative_difference(fused.dx, plain.dx) < tol);
      CHECK(relative_difference(fused.dweight, plain.dweight) < tol);
      CHECK(relative_difference(fused.dbias, plain.dbias) < tol);
      if (c.residual) CHECK(relative_difference(fused.dresidual, plain.dresidual) < tol);
      CHECK(relative_difference(fused.running_mean, plain.running_mean) < 1e-5);
      CHECK(relative_difference(fused.running_var, plain.running_var) < 1e-5);
      CHECK(fused.batches.item<int64_t>() == plain.batches.item<int64_t>());
    }
  }

  TEST_CASE("BatchNorm2d::forward_relu: LibTorch's operators where the kernel does not apply") {
    runner::nn::BatchNorm2d bn(4);
    const Tensor nhwc = torch::randn({2, 4, 3, 3}).contiguous(torch::MemoryFormat::ChannelsLast);
    CHECK(bn->uses_fused_kernel(nhwc));
    CHECK_FALSE(bn->uses_fused_kernel(torch::randn({2, 4, 3, 3})));  // NCHW
    CHECK_FALSE(bn->uses_fused_kernel(nhwc.to(torch::kFloat64)));
    CHECK_FALSE(bn->uses_fused_kernel(nhwc, torch::randn({2, 4, 3, 1})));
    runner::nn::detail::set_fused_batchnorm_relu(false);
    CHECK_FALSE(bn->uses_fused_kernel(nhwc));
    runner::nn::detail::set_fused_batchnorm_relu(true);
    bn->eval();
    CHECK_FALSE(bn->uses_fused_kernel(nhwc));  // eval mode, recording gradients (of weight and bias)
    const Tensor expected = torch::relu(bn->forward(nhwc) + nhwc);
    CHECK(torch::allclose(bn->forward_relu(nhwc, nhwc), expected));
  }

  TEST_CASE("BatchNorm2d in eval mode without gradients: the one-pass kernel equals batch_norm (+ add_ + relu_)") {
    for (const auto dtype : {torch::kFloat32, torch::kBFloat16}) {
      for (const bool residual : {false, true}) {
        for (const bool relu : {false, true}) {
          if (residual && !relu) continue;  // forward() has no residual
          CAPTURE(c10::toString(dtype));
          CAPTURE(residual);
          CAPTURE(relu);
          torch::manual_seed(5);
          runner::nn::BatchNorm2d bn(24);  // 24 channels: a vector's tail
          {
            torch::NoGradGuard no_grad;
            bn->weight.uniform_(0.5, 1.5);
            bn->bias.normal_();
            bn->running_mean.normal_();
            bn->running_var.uniform_(0.2, 3.0);
          }
          bn->eval();
          const auto layout = torch::MemoryFormat::ChannelsLast;
          const Tensor x = (torch::randn({6, 24, 5, 7}) * 3 + 1).to(dtype).contiguous(layout);
          const Tensor r = residual ? torch::randn({6, 24, 5, 7}).to(dtype).contiguous(layout) : Tensor();
          const auto forward = [&] { return relu ? bn->forward_relu(x, r) : bn->forward(x); };
          Tensor fused, plain;
          {
            torch::NoGradGuard no_grad;
            CHECK(bn->uses_fused_kernel(x, r));
            fused = forward();
            runner::nn::detail::set_fused_batchnorm_relu(false);
            CHECK_FALSE(bn->uses_fused_kernel(x, r));
            plain = forward();
            runner::nn::detail::set_fused_batchnorm_relu(true);
          }
          {
            c10::InferenceMode inference;
            CHECK(bn->uses_fused_kernel(x, r));
            CHECK(torch::equal(forward(), fused));
          }
          CHECK((fused.scalar_type() == dtype));
          CHECK(fused.is_contiguous(layout));
          CHECK(relative_difference(fused, plain) < (dtype == torch::kBFloat16 ? 1e-2 : 2e-6));
          CHECK(bn->num_batches_tracked.item<int64_t>() == 0);  // eval: the buffers stay as they were
        }
      }
    }
  }
}
