#pragma once
// Evaluation of the model over a loader: every rank evaluates its shard, the metrics'
// sufficient statistics are summed over ranks, so every rank gets the full-set values.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/options.hpp"
#include "data/loader.hpp"
#include "dist/communicator.hpp"
#include "metrics/metrics.hpp"
#include "runner/components.hpp"

namespace runner {

using MetricValues = std::vector<std::pair<std::string, double>>;

/// "<prefix>/<metric>" values of `metrics` over `loader`, in eval mode on `device`, under
/// the step's precision and layout. Uses rank 0's buffers (BatchNorm running statistics).
MetricValues evaluate(Model& model, Criterion& criterion, Loader& loader,
                      const std::vector<std::shared_ptr<Metric>>& metrics, const std::string& prefix,
                      Communicator& comm, const StepOptions& step, torch::Device device);

/// "val/accuracy 0.9152, val/loss 0.2296".
std::string format_metrics(const MetricValues& values);

}  // namespace runner
