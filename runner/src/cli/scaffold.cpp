#include "cli/scaffold.hpp"

#include <filesystem>
#include <fstream>
#include <regex>

#include "runner/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace runner::cli {
namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

std::string camel_case(const std::string& name) {
  std::string out;
  bool up = true;
  for (char ch : name) {
    if (ch == '_') {
      up = true;
      continue;
    }
    out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(ch))) : ch;
    up = false;
  }
  return out;
}

}  // namespace

const std::vector<std::string>& scaffold_kinds() {
  static const std::vector<std::string> kinds = {"model",     "dataflow", "optimizer", "criterion",
                                                 "scheduler", "metric",   "handler"};
  return kinds;
}

std::string write_plugin_scaffold(const std::string& name, const std::string& kind, const std::string& dir_arg) {
  static const std::regex valid("[a-z][a-z0-9_]{0,63}");
  if (!std::regex_match(name, valid))
    throw ConfigError(
        "new-plugin: NAME must be lower case letters, digits and '_', starting with a letter (it "
        "names the component, the library and the files), got '" +
        name + "'");
  const auto& kinds = scaffold_kinds();
  if (kind.empty()) throw ConfigError("new-plugin: --kind is required (one of " + join(kinds) + ")");
  if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end())
    throw ConfigError("new-plugin: --kind: unknown kind '" + kind + "'" + did_you_mean(kind, kinds) + " (one of " +
                      join(kinds) + ")");
  const fs::path dir = dir_arg.empty() ? fs::path(name) : fs::path(dir_arg);
  std::error_code ec;
  if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec)))
    throw ConfigError("new-plugin: " + dir.string() +
                      " already exists and is not an empty folder; choose another --dir");
  fs::create_directories(dir, ec);
  if (ec) throw ConfigError("new-plugin: cannot create " + dir.string() + ": " + ec.message());

  const auto& t = scaffold_templates();
  const std::vector<std::pair<std::string, std::string>> files = {
      {"CMakeLists.txt.in", "CMakeLists.txt"},
      {kind + ".cpp.in", name + ".cpp"},
      {kind + ".yaml.in", name + ".yaml"},
      {"README.md.in", "README.md"},
  };
  for (const auto& [tpl, out_name] : files) {
    std::string text = t.at(tpl);
    text = replace_all(text, "@NAME@", name);
    text = replace_all(text, "@CLASS@", camel_case(name));
    text = replace_all(text, "@KIND@", kind);
    const fs::path out = dir / out_name;
    std::ofstream f(out);
    f << text;
    if (!f) throw Error("new-plugin: cannot write " + out.string());
  }
  return dir.string();
}

}  // namespace runner::cli
