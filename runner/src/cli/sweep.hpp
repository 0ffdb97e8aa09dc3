#pragma once
// `runner CONFIG -m a=1,2 b=x,y`: a grid of runs, one after another, each a normal run
// folder (resumable on its own), then the `runner compare` table and an HTML page for them.
#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace runner::cli {

/// The grid: each override whose value has top-level commas (`lr=0.1,0.05`, not inside
/// [] {} or quotes) varies over them; the first override varies slowest, as Hydra orders it.
std::vector<std::vector<std::string>> sweep_grid(const std::vector<std::string>& overrides);

struct SweepPlan {
  std::string config_path;
  std::vector<std::vector<std::string>> points;  ///< every run's overrides
  std::vector<std::string> extra_args;           ///< passed to every run (--plugin-path, -q, ...)
  std::string runs_root;                         ///< <output_path>/<config name>: where the runs appear
};

/// Runs every point as a child `runner` process, in order; then prints the comparison and
/// writes <runs_root>/sweep-<time>.html. Returns 0 when every run finished, else the first
/// failing run's exit code.
int run_sweep(const SweepPlan& plan, std::ostream& out);

}  // namespace runner::cli
