#pragma once
// Building components from a validated RunConfig: the one build-from-config path for
// every kind. Factory failures become errors that name the component, its library,
// and (for ParamError) the file, line and key.
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/loader.hpp"
#include "device/device.hpp"
#include "dist/communicator.hpp"
#include "metrics/metrics.hpp"
#include "runner/plugin.hpp"

namespace runner {

struct Components {
  Dataflow dataflow;
  std::shared_ptr<Model> model;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::shared_ptr<Criterion> criterion;
  double base_lr = 0;
  /// The model's parameters that require gradients, collected once: what the optimizer
  /// steps, the gradient reducer all-reduces and the step unscales and clips.
  ParameterList trainable;
  std::string no_decay;  ///< optimizer.no_decay's split, for the banner ("" without it)
};

/// Builds dataflow, model (moved to `device` before the optimizer sees its parameters),
/// optimizer and criterion (the scheduler needs the loader's iteration count:
/// build_scheduler).
Components build_components(const RunConfig& config, const Registry& registry, const DataflowContext& ctx,
                            torch::Device device = torch::kCPU);
std::shared_ptr<Scheduler> build_scheduler(const RunConfig& config, const Registry& registry,
                                           const SchedulerContext& ctx);

/// The config's `metrics:` (added to the built-in accuracy/top5/loss).
std::vector<std::shared_ptr<Metric>> build_metrics(const RunConfig& config, const Registry& registry,
                                                   const MetricContext& ctx);

struct NamedHandler {
  std::string what;  ///< "name (plugin lib.so)", for error messages
  std::shared_ptr<Handler> handler;
};
/// The config's `handlers:`, in order.
std::vector<NamedHandler> build_handlers(const RunConfig& config, const Registry& registry, const HandlerContext& ctx);

/// Everything built from the config before training starts: components, loaders, the
/// scheduler, the validation metrics and the names they log under.
struct Setup {
  Components c;
  std::unique_ptr<Loader> train_loader, val_loader, train_eval_loader;
  std::shared_ptr<Scheduler> scheduler;
  std::vector<std::shared_ptr<Metric>> metrics;  ///< built-in classification metrics + `metrics:`
  std::vector<std::string> logged;               ///< every validation metric's key: val/..., train_eval/...
  int64_t iters_per_epoch = 0, total_iters = 0;
  std::string summary;  ///< the model summary table
};
std::unique_ptr<Setup> build_setup(const RunConfig& config, const Registry& registry, const DistInfo& dist,
                                   const device::Placement& placement);

/// Sets the learning rate of every parameter group.
void set_lr(torch::optim::Optimizer& optimizer, double lr);

}  // namespace runner
