#include "device/cuda.hpp"

namespace runner::device {

std::string describe(const CudaStatus& s) {
  if (!s.compiled) return "not compiled in";
  std::string line = "compiled (" + s.version + ") | available: ";
  if (!s.available) return line + "no (" + s.why_not + ")";
  return line + "yes (" + std::to_string(s.device_count) + (s.device_count == 1 ? " device)" : " devices)");
}

}  // namespace runner::device
