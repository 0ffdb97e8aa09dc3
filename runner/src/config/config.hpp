#pragma once
// From a config file plus overrides to a validated RunConfig. Nothing is built here;
// every check that can be made from the config alone is made here, before any data
// is read or any run folder is created.
#include <array>
#include <string>
#include <vector>

#include "config/tree.hpp"
#include "registry/registry.hpp"
#include "runner/params.hpp"

namespace runner {

struct ComponentConfig {
  const Component* component = nullptr;
  std::string name;
  Params params;             ///< validated, defaults filled
  const config::Node* node = nullptr;  ///< the block in RunConfig::tree (for error locations)
};

/// `best:` or `early_stopping:` (off unless the config has the block).
struct ScoreBlock {
  bool enabled = false;
  std::string metric;
  bool maximize = true;
  int n_saved = 2;         ///< best
  int patience = 5;        ///< early_stopping
  double min_delta = 0;    ///< early_stopping
  const config::Node* node = nullptr;
};

/// `tracking:` what the run folder gets besides metrics.jsonl and metrics.csv.
struct TrackingConfig {
  bool tensorboard = true;
  bool report = true;
  bool mlflow = false;
  std::string mlflow_uri, mlflow_experiment, mlflow_run_name;
};

struct RunConfig {
  std::string path;  ///< the config file as given
  std::string name;  ///< its stem, e.g. "fashion_mnist_resnet8"
  config::Node tree;  ///< resolved: bases merged, overrides applied, defaults filled

  uint64_t seed = 0;
  int64_t num_epochs = 0;
  int64_t validate_every = 1;
  int64_t log_every_iters = 50;
  std::string output_path;
  int threads = 0;
  bool deterministic = false;
  // precision and optimisation step
  std::string amp = "none";          ///< none | bf16 | fp16
  bool channels_last = false;
  double grad_clip_norm = 0;         ///< 0: no clipping
  int64_t grad_accumulation_steps = 1;
  // checkpoints and resume
  int64_t checkpoint_every = -1;  ///< -1: epoch ends only
  int n_saved_checkpoints = 2;
  std::string resume_from;  ///< "" (no), "auto", a run folder or a checkpoint file
  std::vector<std::string> resume_allow_changes;
  ScoreBlock best, early_stopping;
  // dist: block
  std::string dist_backend = "auto";
  double bucket_mb = 25;
  double dist_timeout = 60;
  bool sync_batchnorm = false;
  TrackingConfig tracking;
  // failure injection (tests, demos)
  int64_t crash_iteration = -1;  ///< -1: never
  int crash_rank = -1;           ///< -1: every rank
  std::string crash_mode = "throw";
  std::array<ComponentConfig, kNumSingleKinds> components;  ///< indexed by Kind (dataflow .. scheduler)
  std::vector<ComponentConfig> metrics;   ///< `metrics:`, extra validation metrics, in order
  std::vector<ComponentConfig> handlers;  ///< `handlers:`, in order
  const ComponentConfig& component(Kind k) const { return components[static_cast<int>(k)]; }
};

/// The host's own top-level keys (components excepted), with types, defaults and help.
const Schema& top_level_schema();
/// The `dist:` block's keys.
const Schema& dist_schema();
/// The `tracking:` block's keys, and its `mlflow:` block's.
const Schema& tracking_schema();
const Schema& mlflow_schema();

/// Loads `path`, resolves `_base_`, applies overrides in order.
config::Node load_config(const std::string& path, const std::vector<std::string>& overrides);

/// The `plugins:` entries of a loaded config, resolved relative to the file that set them.
std::vector<std::string> config_plugin_paths(const config::Node& root);

/// Validates `root` against the top-level schema and each component's schema.
/// Throws ConfigError ("file:line:col: key.path: what was expected").
RunConfig resolve_config(config::Node root, const std::string& path, const Registry& registry);

/// Turns a ParamError thrown by a factory of `c` into a ConfigError at the key's location.
[[noreturn]] void rethrow_param_error(const ParamError& e, const ComponentConfig& c);

}  // namespace runner
