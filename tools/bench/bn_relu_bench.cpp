// The fused BatchNorm+ReLU (runner::nn::BatchNorm2d::forward_relu) against LibTorch's
// batch_norm + add_ + relu_ on the same module: training-mode forward and backward times per
// call and the eval-mode forward (under InferenceMode: the one-pass form), channels_last, float32 and bfloat16, with
// and without the residual add, for resnet8's three activation shapes at batch 128 and one ResNet-50 stage-3 shape.
//   build/bin/runner_bn_relu_bench [--threads N] [--iters N]
// Uses the runner's malloc policy and threads (all cores by default). The tensors of one call
// are reused, so they are mostly in cache: a training step, whose activations are not, gains
// less (README, Performance).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "runner/nn.hpp"
#include "util/system.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Times {
  double forward_us = 0, backward_us = 0, eval_us = 0;
};

Times measure(const std::vector<int64_t>& shape, torch::ScalarType dtype, bool residual, bool fused, int iters) {
  runner::nn::detail::set_fused_batchnorm_relu(fused);
  runner::nn::BatchNorm2d bn(shape[1]);
  const auto layout = torch::MemoryFormat::ChannelsLast;
  const torch::Tensor x = torch::randn(shape).to(dtype).contiguous(layout).requires_grad_();
  const torch::Tensor r = residual ? torch::randn(shape).to(dtype).contiguous(layout) : torch::Tensor();
  const torch::Tensor g = torch::randn(shape).to(dtype).contiguous(layout);
  Times t;
  for (int i = -3; i < iters; ++i) {  // 3 warm-up calls
    const auto t0 = Clock::now();
    const torch::Tensor y = bn->forward_relu(x, r);
    const auto t1 = Clock::now();
    y.backward(g);
    const auto t2 = Clock::now();
    x.mutable_grad() = torch::Tensor();
    if (i < 0) continue;
    t.forward_us += std::chrono::duration<double, std::micro>(t1 - t0).count() / iters;
    t.backward_us += std::chrono::duration<double, std::micro>(t2 - t1).count() / iters;
  }
  bn->eval();
  c10::InferenceMode inference;
  for (int i = -3; i < iters; ++i) {
    const auto t0 = Clock::now();
    const torch::Tensor y = bn->forward_relu(x, r);
    if (i >= 0) t.eval_us += std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / iters;
  }
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, iters = 50;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0)
      threads = std::stoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--iters") == 0)
      iters = std::max(1, std::stoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--iters N]\n", argv[0]);
      return 2;
    }
  }
  runner::keep_freed_memory();
  std::printf(
      "threads %d | %d calls each, after 3 warm-up calls | microseconds per call: training forward / backward, "
      "eval forward\n",
      runner::configure_threads(threads, 1), iters);
  std::printf("%-18s %-9s %-8s %27s %27s %9s %9s\n", "shape", "dtype", "residual", "LibTorch's ops", "fused",
              "speed-up", "eval");
  const std::vector<std::vector<int64_t>> shapes = {
      {128, 16, 28, 28}, {128, 32, 14, 14}, {128, 64, 7, 7}, {32, 256, 14, 14}};
  for (const auto dtype : {torch::kFloat32, torch::kBFloat16})
    for (const auto& shape : shapes)
      for (const bool residual : {false, true}) {
        const Times plain = measure(shape, dtype, residual, false, iters);
        const Times fused = measure(shape, dtype, residual, true, iters);
        const std::string s = std::to_string(shape[0]) + "x" + std::to_string(shape[1]) + "x" +
                              std::to_string(shape[2]) + "x" + std::to_string(shape[3]);
        std::printf("%-18s %-9s %-8s %7.0f / %7.0f, %7.0f %7.0f / %7.0f, %7.0f %8.2fx %8.2fx\n", s.c_str(),
                    c10::toString(dtype), residual ? "yes" : "no", plain.forward_us, plain.backward_us, plain.eval_us,
                    fused.forward_us, fused.backward_us, fused.eval_us,
                    (plain.forward_us + plain.backward_us) / (fused.forward_us + fused.backward_us),
                    plain.eval_us / fused.eval_us);
      }
  runner::nn::detail::set_fused_batchnorm_relu(true);
  return 0;
}
