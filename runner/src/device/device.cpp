// The device-neutral half of device.hpp: choosing the device, and the CPU's answers.
#include "device/device.hpp"

#include <ATen/Context.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "device/cuda.hpp"
#include "runner/error.hpp"

namespace runner::device {

std::string Placement::describe() const {
  if (!is_cuda()) return "cpu";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(memory_bytes) / (1024.0 * 1024 * 1024));
  return device.str() + " (" + name + ", " + buf + ")";
}

Placement place(const std::string& want, int local_rank, int local_size, const std::string& where) {
  if (want == "cpu") return Placement{};
  const CudaStatus& cuda = cuda_status();
  if (!cuda.available) {
    if (want == "auto") return Placement{};
    throw ConfigError(where + ": device: cuda, but no CUDA device is usable here (" + cuda.why_not +
                      "); use device: cpu or auto");
  }
  if (local_size > cuda.device_count)
    throw ConfigError(where + ": device: " + want + ": " + std::to_string(local_size) +
                      " ranks on this node but only " + std::to_string(cuda.device_count) +
                      " visible GPU(s) (one GPU per rank; CUDA_VISIBLE_DEVICES chooses which); start at most " +
                      std::to_string(cuda.device_count) + " ranks per node, or use device: cpu");
  return detail::cuda_placement(local_rank);
}

void configure_kernels(const Placement& p, bool deterministic, bool allow_tf32) {
  if (p.is_cuda()) detail::cuda_configure(p.device.index(), deterministic, allow_tf32);
}

NoAutotune::NoAutotune() : was_on_(at::globalContext().benchmarkCuDNN()) {
  if (was_on_) at::globalContext().setBenchmarkCuDNN(false);
}

NoAutotune::~NoAutotune() {
  if (was_on_) at::globalContext().setBenchmarkCuDNN(true);
}

int64_t peak_memory_bytes(const Placement& p) {
  if (p.is_cuda()) return detail::cuda_peak_memory(p.device.index());
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

std::string rng_state(const Placement& p) { return p.is_cuda() ? detail::cuda_rng_state(p.device.index()) : ""; }

void set_rng_state(const Placement& p, const std::string& state) {
  if (p.is_cuda()) detail::cuda_set_rng_state(p.device.index(), state);
}

void synchronize(const Placement& p) {
  if (p.is_cuda()) detail::cuda_synchronize(p.device.index());
}

namespace {
// GFLOP/s of `run` (`flop` per call): the best of two rounds of about 0.2 s, after one call
// that warms up (kernel choice, the pool's threads, the workspace).
template <class F>
double best_rate(const Placement& p, double flop, const F& run) {
  run();
  synchronize(p);
  double best = 0;
  for (int round = 0; round < 2; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    int64_t reps = 0;
    double seconds = 0;
    while (seconds < 0.2) {
      run();
      ++reps;
      if (p.is_cuda() && reps % 8 != 0) continue;  // queue a few before each wait
      synchronize(p);
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    best = std::max(best, flop * static_cast<double>(reps) / seconds / 1e9);
  }
  return best;
}
}  // namespace

PeakRates peak_gflops(const Placement& p, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  const auto opts = torch::TensorOptions().device(p.device).dtype(dtype);
  PeakRates rates;
  {
    const int64_t n = p.is_cuda() ? 8192 : 2048;
    const torch::Tensor a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
    torch::Tensor c = torch::empty({n, n}, opts);
    rates.matmul = best_rate(p, 2.0 * n * n * n, [&] { torch::mm_out(c, a, b); });
  }
  const int64_t batch = p.is_cuda() ? 128 : 32, channels = 256, side = 28;
  const auto nhwc = torch::MemoryFormat::ChannelsLast;
  const torch::Tensor x = torch::randn({batch, channels, side, side}, opts).contiguous(nhwc);
  const torch::Tensor w = torch::randn({channels, channels, 3, 3}, opts).contiguous(nhwc);
  rates.conv = best_rate(p, 2.0 * batch * side * side * channels * channels * 9,
                         [&] { torch::conv2d(x, w, /*bias=*/{}, /*stride=*/1, /*padding=*/1); });
  return rates;
}

namespace {
class HostTransfer : public Transfer {
 public:
  Token start(const std::vector<torch::Tensor*>&) override { return nullptr; }
  void ready(const std::vector<torch::Tensor*>&, const Token&) override {}
};
}  // namespace

std::unique_ptr<Transfer> make_transfer(torch::Device device) {
  if (device.is_cuda()) return detail::cuda_transfer(device.index());
  return std::make_unique<HostTransfer>();
}

std::unique_ptr<StepGraph> make_step_graph(const Placement& p) {
  if (!p.is_cuda()) throw Error("a CUDA graph needs a CUDA device (this rank computes on the CPU)");
  return detail::cuda_step_graph(p.device.index());
}

}  // namespace runner::device
