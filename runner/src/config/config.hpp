#pragma once
// From a config file plus overrides to a validated RunConfig. Nothing is built here;
// every check that can be made from the config alone is made here, before any data
// is read or any run folder is created.
#include <array>
#include <string>
#include <vector>

#include "config/options.hpp"
#include "config/tree.hpp"
#include "registry/registry.hpp"
#include "runner/params.hpp"

namespace runner {

struct ComponentConfig {
  const Component* component = nullptr;
  std::string name;
  Params params;                       ///< validated, defaults filled
  const config::Node* node = nullptr;  ///< the block in RunConfig::tree (for error locations)
};

struct RunConfig {
  std::string path;                    ///< the config file as given
  std::string name;                    ///< its stem, e.g. "fashion_mnist_resnet8"
  config::Node tree;                   ///< resolved: bases merged, overrides applied, defaults filled
  std::vector<std::string> overrides;  ///< as given on the command line (for <run>/overrides.yaml)
  std::string command_line;            ///< the whole command, shell-quoted ("" when not from the CLI)

  RunOptions run;
  CheckpointOptions checkpoint;
  StepOptions step;
  FaultOptions faults;
  std::optional<BestOptions> best;                     ///< `best:` (off unless given)
  std::optional<EarlyStoppingOptions> early_stopping;  ///< `early_stopping:` (off unless given)
  std::optional<EmaOptions> ema;                       ///< `ema:` (off unless given)
  std::optional<ProfileOptions> profile;               ///< `profile:` (off unless given)
  DistOptions dist;
  TrackingOptions tracking;
  std::array<ComponentConfig, kNumSingleKinds> components;  ///< indexed by Kind (dataflow .. scheduler)
  std::vector<ComponentConfig> metrics;                     ///< `metrics:`, extra validation metrics, in order
  std::vector<ComponentConfig> handlers;                    ///< `handlers:`, in order
  const ComponentConfig& component(Kind k) const { return components[static_cast<int>(k)]; }
};

/// The host's own top-level keys (components and nested blocks excepted): the run,
/// checkpoint, step and fault blocks, in that order.
const Schema& top_level_schema();

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
