// libFuzzer target for everything a config goes through before training: YAML
// parsing, `_base_` resolution, `key=value` overrides (and the `--params` form),
// and schema validation against the built-in components. The property: any input
// ends in runner::Error (a one-line message, exit 1 or 2) or success; any other
// exception, crash, hang or sanitizer finding is a bug.
//
// Input format: config YAML; after a line "#--overrides", one override per line.
// Build and run: tools/fuzz/config_fuzzer.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "config/config.hpp"
#include "config/tree.hpp"
#include "registry/registry.hpp"
#include "runner/error.hpp"

namespace {

const runner::Registry& registry() {
  static runner::Registry* r = [] {
    auto* reg = new runner::Registry;
    reg->load(RUNNER_BUILTIN_PLUGINS, "built-in plugin folder");
    return reg;
  }();
  return *r;
}

const std::string& work_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/runner-fuzz-XXXXXX";
    return std::string(mkdtemp(tmpl));
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  std::string text = input;
  std::vector<std::string> overrides;
  const std::string marker = "#--overrides\n";
  if (auto pos = input.find(marker); pos != std::string::npos) {
    text = input.substr(0, pos);
    std::istringstream rest(input.substr(pos + marker.size()));
    for (std::string line; std::getline(rest, line);) overrides.push_back(line);
  }
  // The CLI path: a config file (bases relative to it), then overrides in order.
  const std::string path = work_dir() + "/fuzz.yaml";
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  try {
    std::vector<std::string> all = overrides;
    for (const auto& o : overrides)
      for (auto& a : runner::config::split_params(o)) all.push_back(a);
    runner::config::Node root = runner::load_config(path, all);
    runner::config_plugin_paths(root);
    runner::RunConfig rc = runner::resolve_config(std::move(root), path, registry());
    // What print-config prints for it must be valid YAML again.
    try {
      runner::config::parse(runner::config::emit(rc.tree), "print-config output");
    } catch (const runner::Error& e) {
      std::fprintf(stderr, "print-config output does not parse: %s\n", e.what());
      std::abort();
    }
  } catch (const runner::Error&) {
    // a clear, located error: the expected outcome for bad input
  }
  return 0;
}
