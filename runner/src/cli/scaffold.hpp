#pragma once
// `runner new-plugin NAME --kind KIND [--dir DIR]`: writes a ready-to-build plugin
// project from the templates in runner/templates (embedded in the binary at build time).
#include <map>
#include <string>
#include <vector>

namespace runner::cli {

/// The kinds new-plugin can scaffold, in help order.
const std::vector<std::string>& scaffold_kinds();

/// Template file name ("model.cpp.in", "CMakeLists.txt.in", ...) -> text.
const std::map<std::string, std::string>& scaffold_templates();

/// Writes DIR/{CMakeLists.txt, NAME.cpp, NAME.yaml, README.md} (DIR defaults to ./NAME)
/// and returns DIR. ConfigError for a bad name or kind, or an existing non-empty DIR.
std::string write_plugin_scaffold(const std::string& name, const std::string& kind, const std::string& dir);

}  // namespace runner::cli
