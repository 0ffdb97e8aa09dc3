// The CUDA build's answer (compiled only when RUNNER_WITH_CUDA). It asks LibTorch's c10_cuda,
// never the driver API directly, so runner links no libcuda and starts without a driver.
#include <c10/cuda/CUDAFunctions.h>
#include <cuda_runtime_api.h>

#include "device/cuda.hpp"

namespace runner::device {

namespace {
CudaStatus probe() {
  CudaStatus s;
  s.compiled = true;
  s.version = std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
  try {
    s.device_count = c10::cuda::device_count_ensure_non_zero();
    s.available = true;
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    s.why_not = what.find("no NVIDIA driver") != std::string::npos ? "no driver" : "no device";
  }
  return s;
}
}  // namespace

const CudaStatus& cuda_status() {
  static const CudaStatus status = probe();
  return status;
}

}  // namespace runner::device
