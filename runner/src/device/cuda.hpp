#pragma once
// What this runner knows about CUDA: whether it was built with it (RUNNER_CUDA and a CUDA
// LibTorch) and whether a device can be used now. One implementation per build:
// cuda.cpp (compiled only with CUDA) or no_cuda.cpp. Asking never fails and never needs a
// driver: on a machine without one the answer is "available: no (no driver)".
#include <string>

namespace runner::device {

struct CudaStatus {
  bool compiled = false;   // built with CUDA
  std::string version;     // the CUDA version LibTorch and runner were built with, "13.0"
  bool available = false;  // at least one device can be used now
  int device_count = 0;
  std::string why_not;  // when not available: "no driver", "no device", "not compiled in"
};

/// Probes once per process (the first call loads the driver where there is one).
const CudaStatus& cuda_status();
/// One line for `runner version` and the run banner:
/// "compiled (13.0) | available: no (no driver)", "compiled (13.0) | available: yes (1 device)",
/// "not compiled in".
std::string describe(const CudaStatus& status);

}  // namespace runner::device
