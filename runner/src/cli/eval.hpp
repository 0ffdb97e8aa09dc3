#pragma once
// `runner eval RUN_DIR [--checkpoint best|last|FILE] [--split val|train] [--device D]`: saved
// weights evaluated again with the run's config, metrics and precision, in one process on the
// run's device (or --device).
#include <ostream>
#include <string>

#include "config/config.hpp"
#include "registry/registry.hpp"

namespace runner::cli {

struct EvalRequest {
  std::string run_dir;
  std::string checkpoint = "best";  ///< best | last | a .pt, .ckpt or .safetensors file
  std::string split = "val";        ///< val | train (the training set with its training transforms)
  std::string device;               ///< --device: auto | cpu | cuda; "" the run's (run_placement)
};

/// Prints "<split>/<metric> value" lines and a last one with the weights evaluated.
void evaluate_run(const EvalRequest& request, const RunConfig& config, const Registry& registry, std::ostream& out);

}  // namespace runner::cli
