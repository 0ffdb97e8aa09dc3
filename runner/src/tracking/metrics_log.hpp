#pragma once
// metrics.jsonl, the record of a run that resume and `runner compare` read back: one JSON
// object a line, {"iteration": 12, "epoch": 1, "train/batch_loss": 0.5, "lr": 0.1}.
// Writing it, reading it and cutting it back on resume live here together, so that they
// agree on the format:
// - keys are JSON strings, escaped ("a\"b", "back\\slash", "\n", "\u0001"), so a handler
//   key cannot break a line; UTF-8 is written as it is;
// - numbers are the shortest text that reads back exactly (runner::shortest: 0.1, 1, 1e-05);
// - NaN and infinities are written as Python's json module writes them: NaN, Infinity,
//   -Infinity (json.loads reads them back as floats); null (older files) reads as NaN;
// - "iteration" and "epoch" come first; a later member of the same name is a value.
#include <cstdint>
#include <cstdio>
#include <string>

#include "tracking/history.hpp"

namespace runner::tracking {

/// <run_dir>/metrics.jsonl
std::string metrics_log_path(const std::string& run_dir);

/// One record as a line of metrics.jsonl, ending in "\n".
std::string format_record(int64_t iteration, int64_t epoch, const Values& values);

/// Parses one line (a trailing "\r" or "\n" is allowed). False when it is not a record:
/// not a JSON object of numbers, no "iteration", or torn by a crash.
bool parse_record(const std::string& line, Row* row);

/// Appends records to a metrics.jsonl; each is flushed as it is written.
class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);  ///< throws Error if it cannot be opened
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void write(int64_t iteration, int64_t epoch, const Values& values);

 private:
  std::FILE* f_ = nullptr;
};

/// Reads a metrics.jsonl. Blank lines are skipped; throws Error("<path>:<line>: ...") at
/// the first line that is not a record.
History read_metrics(const std::string& path);

/// Keeps the records of <run_dir>/metrics.jsonl up to `iteration`, byte for byte, and drops
/// the rest and any line that is not a record (one torn by a crash): a resumed run rewrites
/// what came after its checkpoint. Replaces the file atomically. Rank 0 only.
void truncate_metrics(const std::string& run_dir, int64_t iteration);

}  // namespace runner::tracking
