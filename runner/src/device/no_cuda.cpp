// The CPU-only build's half (RUNNER_CUDA=OFF, or a LibTorch without CUDA): no device is
// ever usable, so place() never asks for the others.
#include "device/cuda.hpp"
#include "device/device.hpp"
#include "runner/error.hpp"

namespace runner::device {

const CudaStatus& cuda_status() {
  static const CudaStatus status{false, "", false, 0, "not compiled in"};
  return status;
}

namespace detail {
namespace {
[[noreturn]] void unreachable() { throw Error("CUDA is not compiled into this runner"); }
}  // namespace
Placement cuda_placement(int) { unreachable(); }
void cuda_configure(int, bool, bool) { unreachable(); }
int64_t cuda_peak_memory(int) { unreachable(); }
std::string cuda_rng_state(int) { unreachable(); }
void cuda_set_rng_state(int, const std::string&) { unreachable(); }
void cuda_synchronize(int) { unreachable(); }
std::unique_ptr<Transfer> cuda_transfer(int) { unreachable(); }
std::unique_ptr<StepGraph> cuda_step_graph(int) { unreachable(); }
}  // namespace detail

}  // namespace runner::device
