#pragma once
// Files of the run folder that are written as the run goes: metrics.jsonl, and the
// model summary; plus the console progress display.
#include <chrono>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "runner/components.hpp"

namespace runner {

/// metrics.jsonl: one JSON object per line, {"iteration":..,"epoch":..,"key":value,...}.
/// Values are written with 17 significant digits (round-trip exact); non-finite as null.
class MetricsFile {
 public:
  explicit MetricsFile(const std::string& path);
  ~MetricsFile();
  void write(int64_t iteration, int64_t epoch, const std::vector<std::pair<std::string, double>>& values);

 private:
  std::FILE* f_ = nullptr;
};

/// A Keras-like table: layer (type), output shape, parameters, and totals. Runs one
/// forward pass on a zero batch of 2 in eval mode with no gradients.
std::string model_summary(Model& model, const std::string& name, const std::vector<int64_t>& input_shape);
int64_t count_parameters(const torch::nn::Module& m, bool trainable_only = false);

/// Progress of training: a redrawn bar on a TTY, else one log line per call of line().
class Progress {
 public:
  explicit Progress(bool tty) : tty_(tty) {}
  bool tty() const { return tty_; }
  /// Redraws the bar (TTY only).
  void bar(int64_t epoch, int64_t max_epochs, int64_t it, int64_t epoch_length, double it_per_s,
           double eta_s, double loss, double lr);
  void clear();  ///< ends the bar line before other output

 private:
  bool tty_;
  bool drawn_ = false;
};

std::string format_duration(double seconds);  ///< "1m23s"

}  // namespace runner
