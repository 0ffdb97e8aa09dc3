// The CPU-only build's answer (RUNNER_CUDA=OFF, or a LibTorch without CUDA).
#include "device/cuda.hpp"

namespace runner::device {

const CudaStatus& cuda_status() {
  static const CudaStatus status{false, "", false, 0, "not compiled in"};
  return status;
}

}  // namespace runner::device
