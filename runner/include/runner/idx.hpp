#pragma once
// Reading IDX files (the MNIST family's format), gzip-compressed or plain.
#include <cstdint>
#include <string>
#include <vector>

#include "runner/api.hpp"

namespace runner {

/// An unsigned-byte IDX array: dims (e.g. {60000, 28, 28}) and row-major data.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;
};

/// Reads `path` (`.gz` or plain; decided by content). Only type 0x08 (unsigned byte)
/// is accepted. Throws runner::Error naming the file for a missing, truncated or
/// malformed file, or one whose data size does not match its header.
RUNNER_API IdxArray read_idx(const std::string& path);

/// Writes `array` as a plain (gzip = false) or gzip-compressed IDX file. For tests and tools.
RUNNER_API void write_idx(const std::string& path, const IdxArray& array, bool gzip);

}  // namespace runner
