#pragma once
// `runner compare RUN_DIR RUN_DIR ...`: the config keys that differ between runs and
// their final/best metrics, as a console table and as compare.html with curves overlaid.
#include <ostream>
#include <string>
#include <vector>

namespace runner::tracking {

/// Prints the tables to `out` and writes `html_path`. Throws ConfigError for a folder
/// that is not a run folder.
void compare_runs(const std::vector<std::string>& run_dirs, const std::string& html_path, std::ostream& out);

}  // namespace runner::tracking
