#pragma once
// Registering components in a plugin library.
//
// One component = one .cpp ending with one registration line:
//
//   RUNNER_REGISTER_MODEL("resnet8", "CIFAR-style ResNet-8", schema, make);
//
// where `schema` is `runner::Schema()` returning the declared parameters and `make`
// is the factory (signatures below). runner_add_plugin() (CMake) generates the one
// exported entry symbol; what it returns and how the host checks it is in
// runner/detail/plugin_abi.hpp.
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
using OptimizerFactory = std::function<std::unique_ptr<torch::optim::Optimizer>(const Params&, const ParameterList&)>;
using CriterionFactory = std::function<std::shared_ptr<Criterion>(const Params&)>;
using SchedulerFactory = std::function<std::shared_ptr<Scheduler>(const Params&, const SchedulerContext&)>;
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

}  // namespace runner

#include "runner/detail/plugin_abi.hpp"

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
