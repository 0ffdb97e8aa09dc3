#include "engine/build.hpp"

#include "runner/error.hpp"
#include "util/strings.hpp"

namespace runner {

template <class F>
auto call_factory(const ComponentConfig& c, const Registry& registry, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const ParamError& e) {
    rethrow_param_error(e, c);
  } catch (const ConfigError&) {
    throw;
  } catch (const std::exception& e) {
    throw ConfigError(c.node->loc.str() + ": " + c.params.path() + ": " + kind_name(c.component->kind) + " '" +
                      c.name + "' (plugin " + registry.library_of(c.component) + ") failed to build: " +
                      first_line(e.what()));
  }
}

namespace {
template <class FactoryT>
const FactoryT& factory_of(const ComponentConfig& c) {
  return std::get<FactoryT>(c.component->factory);
}
}  // namespace

Components build_components(const RunConfig& config, const Registry& registry, const DataflowContext& ctx) {
  Components out;
  const auto& df = config.component(Kind::Dataflow);
  out.dataflow = call_factory(df, registry, [&] { return factory_of<DataflowFactory>(df)(df.params, ctx); });
  auto fail = [&](const std::string& msg) {
    throw Error("dataflow '" + df.name + "' (plugin " + registry.library_of(df.component) + "): " + msg);
  };
  if (!out.dataflow.train || !out.dataflow.val) fail("made no train or no val dataset");
  if (out.dataflow.batch_size < 1) fail("batch size must be >= 1");
  if (out.dataflow.num_classes < 1) fail("num_classes must be >= 1");
  if (out.dataflow.train->size() < 1) fail("the train dataset is empty");
  if (out.dataflow.val->size() < 1) fail("the val dataset is empty");
  if (out.dataflow.batch_size < ctx.world_size) {
    const config::Node* v = df.node->find("batch_size");
    const std::string where = v && v->loc.file != "default" ? v->loc.str() : df.node->loc.str();
    throw ConfigError(where + ": dataflow.batch_size: the global batch (" + std::to_string(out.dataflow.batch_size) +
                      ") must be at least the number of ranks (" + std::to_string(ctx.world_size) +
                      "); it is split across them");
  }

  const auto& mc = config.component(Kind::Model);
  const ModelContext mctx{out.dataflow.train->sample_shape(), out.dataflow.num_classes};
  out.model = call_factory(mc, registry, [&] { return factory_of<ModelFactory>(mc)(mc.params, mctx); });
  if (!out.model) throw Error("model '" + mc.name + "' factory returned nothing");

  const auto& oc = config.component(Kind::Optimizer);
  ParameterList params;
  for (auto& p : out.model->parameters())
    if (p.requires_grad()) params.push_back(p);
  out.optimizer = call_factory(oc, registry, [&] { return factory_of<OptimizerFactory>(oc)(oc.params, params); });
  if (!out.optimizer || out.optimizer->param_groups().empty())
    throw Error("optimizer '" + oc.name + "' factory returned no optimizer");
  out.base_lr = out.optimizer->param_groups().front().options().get_lr();

  const auto& cc = config.component(Kind::Criterion);
  out.criterion = call_factory(cc, registry, [&] { return factory_of<CriterionFactory>(cc)(cc.params); });
  if (!out.criterion) throw Error("criterion '" + cc.name + "' factory returned nothing");
  return out;
}

std::shared_ptr<Scheduler> build_scheduler(const RunConfig& config, const Registry& registry,
                                           const SchedulerContext& ctx) {
  const auto& sc = config.component(Kind::Scheduler);
  auto s = call_factory(sc, registry, [&] { return factory_of<SchedulerFactory>(sc)(sc.params, ctx); });
  if (!s) throw Error("scheduler '" + sc.name + "' factory returned nothing");
  // Evaluate the rule once at both ends so a bad rule fails now, not mid-run.
  call_factory(sc, registry, [&] { return s->lr(0) + s->lr(std::max<int64_t>(0, ctx.total_iterations - 1)); });
  return s;
}

std::vector<std::shared_ptr<Metric>> build_metrics(const RunConfig& config, const Registry& registry,
                                                   const MetricContext& ctx) {
  std::vector<std::shared_ptr<Metric>> out;
  for (const auto& mc : config.metrics) {
    auto m = call_factory(mc, registry, [&] { return factory_of<MetricFactory>(mc)(mc.params, ctx); });
    if (!m) throw Error("metric '" + mc.name + "' factory returned nothing");
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<NamedHandler> build_handlers(const RunConfig& config, const Registry& registry,
                                         const HandlerContext& ctx) {
  std::vector<NamedHandler> out;
  for (const auto& hc : config.handlers) {
    auto h = call_factory(hc, registry, [&] { return factory_of<HandlerFactory>(hc)(hc.params, ctx); });
    if (!h) throw Error("handler '" + hc.name + "' factory returned nothing");
    out.push_back({hc.name + " (plugin " + registry.library_of(hc.component) + ")", std::move(h)});
  }
  return out;
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace runner
