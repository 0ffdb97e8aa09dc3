#pragma once
// The binary side of plugins, which plugin authors never use directly: each library's
// manifest, the C header its one exported entry symbol returns (whose layout never
// changes, so the host can check any library before trusting it), and the macros
// behind RUNNER_REGISTER_* and the generated entry (cmake/plugin_entry.cpp.in).
// Included by runner/plugin.hpp.
#include <cstdint>

namespace runner {
namespace detail {
// Hidden: each plugin library has its own list, even when loaded next to others.
RUNNER_HIDDEN inline Manifest& library_manifest() {
  static Manifest manifest;
  return manifest;
}
RUNNER_HIDDEN inline bool add_component(Kind kind, const char* name, const char* doc, Schema (*schema)(),
                                        Factory factory) {
  library_manifest().components.push_back(Component{kind, name, doc, schema(), std::move(factory)});
  return true;
}
}  // namespace detail
}  // namespace runner

/// The C header returned by a plugin's entry symbol. Its layout never changes.
extern "C" struct RunnerPluginHeader {
  uint32_t magic;        ///< kRunnerPluginMagic
  uint32_t api_version;  ///< RUNNER_PLUGIN_API_VERSION the plugin was built with
  const char* torch_version;
  int cxx11_abi;  ///< _GLIBCXX_USE_CXX11_ABI
  const char* compiler;
  const void* manifest;  ///< runner::Manifest*, read only after the checks pass
};
constexpr uint32_t kRunnerPluginMagic = 0x52554E52;  // "RUNR"
#define RUNNER_PLUGIN_ENTRY_SYMBOL "runner_plugin_entry"

#define RUNNER_STR2(x) #x
#define RUNNER_STR(x) RUNNER_STR2(x)
#define RUNNER_CAT2(a, b) a##b
#define RUNNER_CAT(a, b) RUNNER_CAT2(a, b)

#define RUNNER_PLUGIN_ENTRY(LIBNAME)                                                        \
  extern "C" RUNNER_API const RunnerPluginHeader* runner_plugin_entry() {                   \
    static const RunnerPluginHeader header = [] {                                           \
      ::runner::detail::library_manifest().library = LIBNAME;                               \
      return RunnerPluginHeader{kRunnerPluginMagic, RUNNER_PLUGIN_API_VERSION,              \
                                TORCH_VERSION,      _GLIBCXX_USE_CXX11_ABI,                 \
                                __VERSION__,        &::runner::detail::library_manifest()}; \
    }();                                                                                    \
    return &header;                                                                         \
  }

#define RUNNER_REGISTER_(KIND, FACTORY_T, NAME, DOC, SCHEMA, FACTORY)                                         \
  namespace {                                                                                                 \
  [[maybe_unused]] const bool RUNNER_CAT(runner_registered_, __LINE__) =                                      \
      ::runner::detail::add_component(::runner::Kind::KIND, NAME, DOC, SCHEMA, ::runner::FACTORY_T(FACTORY)); \
  }
