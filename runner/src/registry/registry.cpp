#include "registry/registry.hpp"

#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <filesystem>

#include "runner/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace runner {
namespace {

// Never destroyed: plugin code must stay mapped while any object it made is alive,
// including objects destroyed by static destructors at exit.
std::vector<boost::dll::shared_library>& loaded_libraries() {
  static auto* libs = new std::vector<boost::dll::shared_library>();
  return *libs;
}

}  // namespace

std::string Registry::builtin_dir() {
  const fs::path exe = boost::dll::program_location();
  return (exe.parent_path().parent_path() / "lib" / "runner" / "plugins").lexically_normal().string();
}

void Registry::load(const std::string& path, const std::string& origin) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.path().extension() == ".so" && fs::is_regular_file(e.path(), ec)) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) load_library(f, origin);
    return;
  }
  if (!fs::exists(path, ec)) throw ConfigError(origin + ": plugin path '" + path + "' does not exist");
  load_library(path, origin);
}

void Registry::load_library(const std::string& file, const std::string& origin) {
  std::error_code ec;
  const std::string canon = fs::weakly_canonical(file, ec).string();
  if (std::find(libraries_.begin(), libraries_.end(), canon) != libraries_.end()) return;
  const std::string who = "plugin " + canon + " (from " + origin + ")";

  boost::dll::shared_library lib;
  try {
    lib.load(canon, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw ConfigError(who + ": cannot load library: " + e.what());
  }
  if (!lib.has(RUNNER_PLUGIN_ENTRY_SYMBOL))
    throw ConfigError(who + ": not a runner plugin (no '" RUNNER_PLUGIN_ENTRY_SYMBOL
                            "' symbol; build it with runner_add_plugin)");
  const RunnerPluginHeader* header = lib.get<const RunnerPluginHeader*()>(RUNNER_PLUGIN_ENTRY_SYMBOL)();
  if (!header || header->magic != kRunnerPluginMagic)
    throw ConfigError(who + ": not a runner plugin (bad header in '" RUNNER_PLUGIN_ENTRY_SYMBOL "')");
  if (header->api_version != RUNNER_PLUGIN_API_VERSION)
    throw ConfigError(who + ": built for plugin API version " + std::to_string(header->api_version) +
                      ", this runner has version " + std::to_string(RUNNER_PLUGIN_API_VERSION) +
                      "; rebuild the plugin against this runner's SDK");
  if (std::string(header->torch_version) != TORCH_VERSION || header->cxx11_abi != _GLIBCXX_USE_CXX11_ABI)
    throw ConfigError(who + ": built against LibTorch " + header->torch_version + " (C++11 ABI " +
                      std::to_string(header->cxx11_abi) + "), this runner uses LibTorch " TORCH_VERSION " (C++11 ABI " +
                      std::to_string(_GLIBCXX_USE_CXX11_ABI) + "); rebuild the plugin against this LibTorch");
  const auto* manifest = static_cast<const Manifest*>(header->manifest);
  for (const Component& c : manifest->components) {
    for (const Entry& e : entries_)
      if (e.component->kind == c.kind && e.component->name == c.name)
        throw ConfigError(std::string("duplicate component ") + kind_name(c.kind) + "/" + c.name + ": defined in " +
                          e.library + " and in " + canon);
  }
  for (const Component& c : manifest->components) entries_.push_back(Entry{&c, canon});
  libraries_.push_back(canon);
  loaded_libraries().push_back(std::move(lib));
}

const Component* Registry::find(Kind kind, const std::string& name) const {
  for (const Entry& e : entries_)
    if (e.component->kind == kind && e.component->name == name) return e.component;
  return nullptr;
}

std::vector<const Component*> Registry::components(Kind kind) const {
  std::vector<const Component*> out;
  for (const Entry& e : entries_)
    if (e.component->kind == kind) out.push_back(e.component);
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->name < b->name; });
  return out;
}

std::vector<std::string> Registry::names(Kind kind) const {
  std::vector<std::string> out;
  for (const Component* c : components(kind)) out.push_back(c->name);
  return out;
}

const std::string& Registry::library_of(const Component* c) const {
  static const std::string unknown = "?";
  for (const Entry& e : entries_)
    if (e.component == c) return e.library;
  return unknown;
}

}  // namespace runner
