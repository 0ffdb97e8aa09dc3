#pragma once
// Where the training loop's time goes, per part: waiting for data, forward (with the
// loss), backward, waiting for communication (gradient buckets, the per-step stop
// agreement), the optimizer (unscale, clip, step), device-to-host reads, and the handlers
// (logging, checkpoints, progress). Measured with the host clock around each part; a
// read's time is taken out of the part it happened in and counted as host_reads, so the
// parts add up to the loop's time. On a GPU the host runs ahead of the device: there the
// kernels' time shows up where the host waits (host_reads, or data_wait at the copy), and
// a profiler trace tells the device's own story.
#include <ATen/record_function.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "device/host_read.hpp"

namespace runner {

struct StepTimes {
  enum Part { DataWait, Forward, Backward, CommWait, Optimizer, HostReads, Handlers, kParts };
  static constexpr std::array<const char*, kParts> kNames{"data_wait", "forward",    "backward", "comm_wait",
                                                          "optimizer", "host_reads", "handlers"};
  std::array<double, kParts> seconds{};

  double total() const {
    double t = 0;
    for (double s : seconds) t += s;
    return t;
  }
  /// {"data_wait", seconds}, ... in order.
  std::vector<std::pair<std::string, double>> parts() const {
    std::vector<std::pair<std::string, double>> out;
    for (int i = 0; i < kParts; ++i) out.emplace_back(kNames[i], seconds[i]);
    return out;
  }
  /// "forward 31.2%, backward 52.0%, ..." of the total.
  std::string shares() const {
    std::string out;
    const double all = total();
    char buf[64];
    for (int i = 0; i < kParts; ++i) {
      std::snprintf(buf, sizeof buf, "%s%s %.1f%%", out.empty() ? "" : ", ", kNames[i],
                    all > 0 ? 100 * seconds[i] / all : 0.0);
      out += buf;
    }
    return out;
  }

  /// Times a region as `part`, less the host reads inside it (counted as HostReads).
  class Scope {
   public:
    Scope(StepTimes& t, Part part) : t_(t), part_(part), start_(clock::now()), reads_(device::host_read_seconds()) {
      if (range_.isActive()) range_.before(kNames[part]);  // a named range in a profiler trace
    }
    ~Scope() {
      const double reads = device::host_read_seconds() - reads_;
      t_.seconds[part_] += std::chrono::duration<double>(clock::now() - start_).count() - reads;
      t_.seconds[HostReads] += reads;
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    using clock = std::chrono::steady_clock;
    StepTimes& t_;
    Part part_;
    clock::time_point start_;
    double reads_;
    at::RecordFunction range_{at::RecordScope::USER_SCOPE};
  };
};

}  // namespace runner
