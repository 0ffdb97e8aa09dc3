#pragma once
// The metric history of a run, as metrics.jsonl records it: rows of (iteration, epoch,
// key=value...). Held in memory while training (report.html and metrics.csv are drawn
// from it), read back from a run folder (tracking/metrics_log.hpp) by `runner compare`
// and on resume.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace runner::tracking {

using Values = std::vector<std::pair<std::string, double>>;

struct Row {
  int64_t iteration = 0;
  int64_t epoch = 0;
  Values values;
};

/// (iteration, value) points of one key.
using Series = std::vector<std::pair<int64_t, double>>;

class History {
 public:
  void add(int64_t iteration, int64_t epoch, const Values& values);
  const std::vector<Row>& rows() const { return rows_; }
  bool empty() const { return rows_.empty(); }
  /// Every key, in the order of first appearance.
  const std::vector<std::string>& keys() const { return keys_; }
  /// The validation keys (val/..., val_ema/..., train_eval/...), in the order of first appearance.
  std::vector<std::string> eval_keys() const;
  Series series(const std::string& key) const;
  std::optional<double> last(const std::string& key) const;
  /// The best value by lower_is_better(key), with the epoch that reached it.
  std::optional<std::pair<double, int64_t>> best(const std::string& key) const;
  /// metrics.csv: iteration,epoch,<every key>; an empty cell where a row lacks the key.
  /// Fields are quoted as RFC 4180 asks (those with , " CR or LF; quotes doubled); values
  /// are the shortest text that reads back exactly, non-finite ones nan, inf, -inf.
  std::string csv() const;

 private:
  std::vector<Row> rows_;
  std::vector<std::string> keys_;
};

/// A validation metric: "val/...", "val_ema/..." (the weight average, `ema:`) or "train_eval/...".
bool is_eval_key(const std::string& key);

/// Losses and errors are better lower; everything else (accuracy, top-k...) higher.
bool lower_is_better(const std::string& key);

/// A config as dotted keys with scalar text values ("optimizer.lr" -> "0.1"); lists
/// are written in flow style ("[0.4914, 0.4822, 0.4465]").
std::vector<std::pair<std::string, std::string>> flatten(const YAML::Node& node, const std::string& prefix = "");

/// "%.6g"-style short text of a value ("0.9142", "1.2e-05", "nan").
std::string short_number(double v);

}  // namespace runner::tracking
