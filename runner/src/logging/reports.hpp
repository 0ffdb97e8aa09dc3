#pragma once
// The model summary (model_summary.txt) and the console progress display.
// (metrics.jsonl is written by tracking/metrics_log.hpp.)
#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "runner/components.hpp"

namespace runner {

/// One forward pass on a zero batch of 2 samples of `fields`, in eval mode with no
/// gradients: the outputs, and the shapes the model traced.
struct ModelProbe {
  TensorDict batch, outputs;
  std::vector<std::pair<std::string, std::vector<int64_t>>> traced;
};
ModelProbe probe_model(Model& model, const Fields& fields);

/// A Keras-like table from the probe: layer (type), output shape, parameters, and totals.
std::string model_summary(Model& model, const std::string& name, const ModelProbe& probe);
int64_t count_parameters(const torch::nn::Module& m, bool trainable_only = false);

/// Progress of training: a redrawn bar on a TTY, else one log line per call of line().
class Progress {
 public:
  explicit Progress(bool tty) : tty_(tty) {}
  bool tty() const { return tty_; }
  /// Redraws the bar (TTY only).
  void bar(int64_t epoch, int64_t max_epochs, int64_t it, int64_t epoch_length, double it_per_s, double eta_s,
           double loss, double lr);
  void clear();  ///< ends the bar line before other output

 private:
  bool tty_;
  bool drawn_ = false;
};

std::string format_duration(double seconds);  ///< "1m23s"

}  // namespace runner
