#include "device/host_read.hpp"

#include <atomic>
#include <chrono>

namespace runner::device {

namespace {
std::atomic<int64_t> reads{0};
std::atomic<int64_t> read_ns{0};
}  // namespace

std::vector<double> read_values(const torch::Tensor& t) {
  const auto t0 = std::chrono::steady_clock::now();
  ++reads;
  const torch::Tensor host = t.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  const double* p = host.data_ptr<double>();
  std::vector<double> out(p, p + host.numel());
  read_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

double host_read_seconds() { return static_cast<double>(read_ns.load()) * 1e-9; }

double read_value(const torch::Tensor& t) { return read_values(t.reshape({1})).front(); }

int64_t host_reads() { return reads.load(); }

}  // namespace runner::device
