#pragma once
// Registering components in a plugin library.
//
// One component = one .cpp ending with one registration line:
//
//   RUNNER_REGISTER_MODEL("resnet8", "CIFAR-style ResNet-8", schema, make);
//
// where `schema` is `runner::Schema()` returning the declared parameters and `make`
// is the factory (signatures below). runner_add_plugin() (CMake) generates the one
// exported entry symbol, `runner_plugin_entry`, which the host looks up with
// Boost.DLL. It returns a plain C header (checked first: magic, API version, LibTorch
// version, C++ ABI) that points at the library's Manifest.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "runner/components.hpp"

namespace runner {

enum class Kind { Dataflow, Model, Optimizer, Criterion, Scheduler, Metric, Handler };
constexpr int kNumKinds = 7;
/// The kinds a config has exactly one of (dataflow .. scheduler); metrics and handlers
/// are lists (`metrics: [...]`, `handlers: [...]`).
constexpr int kNumSingleKinds = 5;
RUNNER_API const char* kind_name(Kind kind);  ///< "dataflow", "model", ...

using DataflowFactory = std::function<Dataflow(const Params&, const DataflowContext&)>;
using ModelFactory = std::function<std::shared_ptr<Model>(const Params&, const ModelContext&)>;
using OptimizerFactory =
    std::function<std::unique_ptr<torch::optim::Optimizer>(const Params&, const ParameterList&)>;
using CriterionFactory = std::function<std::shared_ptr<Criterion>(const Params&)>;
using SchedulerFactory =
    std::function<std::shared_ptr<Scheduler>(const Params&, const SchedulerContext&)>;
using MetricFactory = std::function<std::shared_ptr<Metric>(const Params&, const MetricContext&)>;
using HandlerFactory = std::function<std::shared_ptr<Handler>(const Params&, const HandlerContext&)>;
using Factory = std::variant<DataflowFactory, ModelFactory, OptimizerFactory, CriterionFactory, SchedulerFactory,
                             MetricFactory, HandlerFactory>;

struct Component {
  Kind kind;
  std::string name;  ///< what a config's `name:` says; unique per kind across all plugins
  std::string doc;   ///< one line for `runner plugins`
  Schema schema;
  Factory factory;
};

struct Manifest {
  std::string library;  ///< plugin name given to runner_add_plugin
  std::vector<Component> components;
};

namespace detail {
// Hidden: each plugin library has its own list, even when loaded next to others.
RUNNER_HIDDEN inline Manifest& library_manifest() {
  static Manifest manifest;
  return manifest;
}
RUNNER_HIDDEN inline bool add_component(Kind kind, const char* name, const char* doc,
                                        Schema (*schema)(), Factory factory) {
  library_manifest().components.push_back(Component{kind, name, doc, schema(), std::move(factory)});
  return true;
}
}  // namespace detail
}  // namespace runner

/// The C header returned by a plugin's entry symbol. Its layout never changes.
extern "C" struct RunnerPluginHeader {
  uint32_t magic;          ///< kRunnerPluginMagic
  uint32_t api_version;    ///< RUNNER_PLUGIN_API_VERSION the plugin was built with
  const char* torch_version;
  int cxx11_abi;           ///< _GLIBCXX_USE_CXX11_ABI
  const char* compiler;
  const void* manifest;    ///< runner::Manifest*, read only after the checks pass
};
constexpr uint32_t kRunnerPluginMagic = 0x52554E52;  // "RUNR"
#define RUNNER_PLUGIN_ENTRY_SYMBOL "runner_plugin_entry"

#define RUNNER_STR2(x) #x
#define RUNNER_STR(x) RUNNER_STR2(x)
#define RUNNER_CAT2(a, b) a##b
#define RUNNER_CAT(a, b) RUNNER_CAT2(a, b)

#define RUNNER_PLUGIN_ENTRY(LIBNAME)                                                     \
  extern "C" RUNNER_API const RunnerPluginHeader* runner_plugin_entry() {                \
    static const RunnerPluginHeader header = [] {                                        \
      ::runner::detail::library_manifest().library = LIBNAME;                            \
      return RunnerPluginHeader{kRunnerPluginMagic, RUNNER_PLUGIN_API_VERSION,           \
                                TORCH_VERSION, _GLIBCXX_USE_CXX11_ABI, __VERSION__,      \
                                &::runner::detail::library_manifest()};                  \
    }();                                                                                 \
    return &header;                                                                      \
  }

#define RUNNER_REGISTER_(KIND, FACTORY_T, NAME, DOC, SCHEMA, FACTORY)                  \
  namespace {                                                                            \
  [[maybe_unused]] const bool RUNNER_CAT(runner_registered_, __LINE__) =                 \
      ::runner::detail::add_component(::runner::Kind::KIND, NAME, DOC, SCHEMA,           \
                                      ::runner::FACTORY_T(FACTORY));                     \
  }

#define RUNNER_REGISTER_DATAFLOW(NAME, DOC, SCHEMA, FACTORY) \
  RUNNER_REGISTER_(Dataflow, DataflowFactory, NAME, DOC, SCHEMA, FACTORY)
#define RUNNER_REGISTER_MODEL(NAME, DOC, SCHEMA, FACTORY) \
  RUNNER_REGISTER_(Model, ModelFactory, NAME, DOC, SCHEMA, FACTORY)
#define RUNNER_REGISTER_OPTIMIZER(NAME, DOC, SCHEMA, FACTORY) \
  RUNNER_REGISTER_(Optimizer, OptimizerFactory, NAME, DOC, SCHEMA, FACTORY)
#define RUNNER_REGISTER_CRITERION(NAME, DOC, SCHEMA, FACTORY) \
  RUNNER_REGISTER_(Criterion, CriterionFactory, NAME, DOC, SCHEMA, FACTORY)
#define RUNNER_REGISTER_SCHEDULER(NAME, DOC, SCHEMA, FACTORY) \
  RUNNER_REGISTER_(Scheduler, SchedulerFactory, NAME, DOC, SCHEMA, FACTORY)
#define RUNNER_REGISTER_METRIC(NAME, DOC, SCHEMA, FACTORY) \
  RUNNER_REGISTER_(Metric, MetricFactory, NAME, DOC, SCHEMA, FACTORY)
#define RUNNER_REGISTER_HANDLER(NAME, DOC, SCHEMA, FACTORY) \
  RUNNER_REGISTER_(Handler, HandlerFactory, NAME, DOC, SCHEMA, FACTORY)
