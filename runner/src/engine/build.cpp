#include "engine/build.hpp"

#include <set>

#include "engine/param_groups.hpp"
#include "engine/trackers.hpp"

#include "logging/reports.hpp"
#include "runner/error.hpp"
#include "util/strings.hpp"
#include "util/parameters.hpp"

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
    throw ConfigError(c.node->loc.str() + ": " + c.params.path() + ": " + kind_name(c.component->kind) + " '" + c.name +
                      "' (plugin " + registry.library_of(c.component) + ") failed to build: " + first_line(e.what()));
  }
}

namespace {
template <class FactoryT>
const FactoryT& factory_of(const ComponentConfig& c) {
  return std::get<FactoryT>(c.component->factory);
}

// The files the runner itself writes at the top of a run folder.
bool is_run_file(const std::string& name) {
  static const std::set<std::string> ours = {"config.yaml",       "model_summary.txt", "run.log",  "metrics.jsonl",
                                             "summary.yaml",      "report.html",       "model.pt", "ema_model.pt",
                                             "model.safetensors", "checkpoints",       "tb",       "profile",
                                             "metrics.csv"};
  return ours.count(name) > 0;
}

// A component reads only fields the dataflow's samples have.
void check_reads(const Fields& fields, const std::vector<std::string>& reads, const std::string& who,
                 const ComponentConfig& df) {
  std::vector<std::string> names;
  for (const Field& f : fields) names.push_back(f.name);
  for (const std::string& r : reads)
    if (std::find(names.begin(), names.end(), r) == names.end())
      throw ConfigError(df.node->loc.str() + ": " + who + " reads the field '" + r + "', which dataflow '" + df.name +
                        "' does not have" + did_you_mean(r, names) + " (its fields: " + join(names) + ")");
}

// The dataflow component, checked: datasets, batch, classes, fields, run-folder files.
Dataflow build_dataflow(const RunConfig& config, const Registry& registry, const DataflowContext& ctx) {
  const auto& df = config.component(Kind::Dataflow);
  Dataflow d = call_factory(df, registry, [&] { return factory_of<DataflowFactory>(df)(df.params, ctx); });
  auto fail = [&](const std::string& msg) {
    throw Error("dataflow '" + df.name + "' (plugin " + registry.library_of(df.component) + "): " + msg);
  };
  if (!d.train || !d.val) fail("made no train or no val dataset");
  if (d.batch_size < 1) fail("batch size must be >= 1");
  if (d.num_classes < 0) fail("num_classes must be >= 0");
  if (d.train->size() < 1) fail("the train dataset is empty");
  if (d.val->size() < 1) fail("the val dataset is empty");
  for (const auto& [name, text] : d.files)
    if (name.empty() || name.find('/') != std::string::npos || name[0] == '.' || is_run_file(name))
      fail("files: '" + name + "' is not a plain file name of its own for the run folder");
  if (d.batch_size < ctx.world_size) {
    const config::Node* v = df.node->find("batch_size");
    const std::string where = v && v->loc.file != "default" ? v->loc.str() : df.node->loc.str();
    throw ConfigError(where + ": dataflow.batch_size: the global batch (" + std::to_string(d.batch_size) +
                      ") must be at least the number of ranks (" + std::to_string(ctx.world_size) +
                      "); it is split across them");
  }
  const auto same = [](const Fields& a, const Fields& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].name != b[i].name || a[i].dtype != b[i].dtype || a[i].shape != b[i].shape) return false;
    return true;
  };
  if (!same(d.train->fields(), d.val->fields()) || (d.train_eval && !same(d.train->fields(), d.train_eval->fields())))
    fail("the val (or train_eval) dataset's fields differ from the train dataset's in name, dtype or shape");
  return d;
}
}  // namespace

Components build_components(const RunConfig& config, const Registry& registry, const DataflowContext& ctx,
                            torch::Device device) {
  Components out;
  out.dataflow = build_dataflow(config, registry, ctx);
  const auto& df = config.component(Kind::Dataflow);

  const auto& mc = config.component(Kind::Model);
  const Fields fields = out.dataflow.train->fields();
  ModelContext mctx{{}, out.dataflow.num_classes, fields};
  for (const Field& f : fields)
    if (f.name == "input") mctx.input_shape = f.shape;
  out.model = call_factory(mc, registry, [&] { return factory_of<ModelFactory>(mc)(mc.params, mctx); });
  if (!out.model) throw Error("model '" + mc.name + "' factory returned nothing");
  check_reads(fields, out.model->inputs(), "model '" + mc.name + "'", df);
  if (const config::Node* pre = mc.node->find("pretrained"); pre && !pre->is_null()) {
    try {
      load_safetensors(*out.model, pre->scalar);
    } catch (const ConfigError& e) {
      throw ConfigError(pre->loc.str() + ": model.pretrained: " + e.what());
    }
  }
  if (!device.is_cpu()) out.model->to(device);

  const auto& oc = config.component(Kind::Optimizer);
  for (auto& p : unique_parameters(*out.model))  // tied weights once
    if (p.requires_grad()) out.trainable.push_back(p);
  out.optimizer =
      call_factory(oc, registry, [&] { return factory_of<OptimizerFactory>(oc)(oc.params, out.trainable); });
  if (!out.optimizer || out.optimizer->param_groups().empty())
    throw Error("optimizer '" + oc.name + "' factory returned no optimizer");
  out.base_lr = out.optimizer->param_groups().front().options().get_lr();
  if (const config::Node* nd = oc.node->find("no_decay"); nd && !nd->is_null()) {
    std::vector<NoDecayRule> rules;
    for (const auto& item : nd->items) rules.push_back({item.scalar, &item});
    out.no_decay = apply_no_decay(*out.optimizer, select_no_decay(*out.model, rules, mc.name), nd->loc.str());
  }

  const auto& cc = config.component(Kind::Criterion);
  out.criterion = call_factory(cc, registry, [&] { return factory_of<CriterionFactory>(cc)(cc.params); });
  if (!out.criterion) throw Error("criterion '" + cc.name + "' factory returned nothing");
  check_reads(fields, out.criterion->inputs(), "criterion '" + cc.name + "'", df);
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

std::vector<NamedHandler> build_handlers(const RunConfig& config, const Registry& registry, const HandlerContext& ctx) {
  std::vector<NamedHandler> out;
  for (const auto& hc : config.handlers) {
    auto h = call_factory(hc, registry, [&] { return factory_of<HandlerFactory>(hc)(hc.params, ctx); });
    if (!h) throw Error("handler '" + hc.name + "' factory returned nothing");
    out.push_back({hc.name + " (plugin " + registry.library_of(hc.component) + ")", std::move(h)});
  }
  return out;
}

namespace {

void build_loaders(Setup& s, const RunConfig& config, const DistInfo& dist, bool pin_memory) {
  const Dataflow& df = s.c.dataflow;
  LoaderOptions train_opts;
  train_opts.global_batch = df.batch_size;
  train_opts.shuffle = true;
  train_opts.drop_last = df.drop_last;
  train_opts.num_workers = df.num_workers;
  train_opts.prefetch = df.prefetch;
  train_opts.seed = config.run.seed;
  train_opts.rank = dist.rank;
  train_opts.world_size = dist.world_size;
  train_opts.skip_bad_samples = df.skip_bad_samples;
  train_opts.pin_memory = pin_memory;
  // Synchronised BatchNorm needs every rank in every forward: no empty shard.
  if (config.dist.sync_batchnorm) train_opts.min_last_batch = dist.world_size;
  LoaderOptions val_opts = train_opts;
  val_opts.min_last_batch = 1;
  val_opts.global_batch = df.val_batch_size > 0 ? df.val_batch_size : df.batch_size;
  val_opts.shuffle = false;
  val_opts.drop_last = false;
  s.train_loader = std::make_unique<Loader>(df.train, train_opts);
  s.val_loader = std::make_unique<Loader>(df.val, val_opts);
  if (df.train_eval) s.train_eval_loader = std::make_unique<Loader>(df.train_eval, val_opts);
  if (s.train_loader->batches_per_epoch() < 1)
    throw ConfigError(config.component(Kind::Dataflow).node->loc.str() + ": dataflow: the train set (" +
                      std::to_string(s.train_loader->dataset_size()) + " samples) gives no batch of " +
                      std::to_string(df.batch_size) + " with drop_last");
}

// The built-in metrics plus `metrics:`; `best:` / `early_stopping:` must name one that is logged.
void build_metric_set(Setup& s, const RunConfig& config, const Registry& registry, const ModelProbe& probe) {
  const auto target = probe.batch.find("target");
  const bool classes = probe.outputs.count("logits") && target != probe.batch.end() &&
                       !target->second.is_floating_point() && s.c.dataflow.num_classes > 0;
  s.metrics = classes ? classification_metrics(s.c.dataflow.num_classes)
                      : std::vector<std::shared_ptr<Metric>>{std::make_shared<AverageLoss>()};
  auto extra = build_metrics(config, registry, MetricContext{s.c.dataflow.num_classes, s.c.dataflow.train->fields()});
  for (size_t i = 0; i < extra.size(); ++i) {
    for (const auto& m : s.metrics)
      if (m->name() == extra[i]->name())
        throw ConfigError(config.metrics[i].node->loc.str() + ": metrics[" + std::to_string(i) + "]: metric '" +
                          config.metrics[i].name + "' logs val/" + m->name() + ", which is already logged");
    s.metrics.push_back(extra[i]);
  }
  for (const auto& m : s.metrics) s.logged.push_back("val/" + m->name());
  if (config.ema)
    for (const auto& m : s.metrics) s.logged.push_back("val_ema/" + m->name());
  if (s.c.dataflow.train_eval)
    for (const auto& m : s.metrics) s.logged.push_back("train_eval/" + m->name());
  const std::string* best = config.best ? &config.best->metric : nullptr;
  const std::string* early = config.early_stopping ? &config.early_stopping->metric : nullptr;
  for (const auto& [key, metric] :
       {std::pair<const char*, const std::string*>{"best", best}, {"early_stopping", early}}) {
    if (!metric || std::find(s.logged.begin(), s.logged.end(), *metric) != s.logged.end()) continue;
    const config::Node* block = config.tree.find(key);
    const config::Node* m = block->find("metric");
    throw ConfigError((m->loc.file == "default" ? block->loc : m->loc).str() + ": " + key + ".metric: '" + *metric +
                      "' is not a logged metric" + did_you_mean(*metric, s.logged) + " (logged: " + join(s.logged) +
                      ")");
  }
}

// The criterion takes the model's outputs: tried once on the probe's, so a missing or
// misshapen output fails now, naming both components.
void check_criterion(const RunConfig& config, const Registry& registry, Criterion& criterion, const ModelProbe& probe) {
  const auto& cc = config.component(Kind::Criterion);
  const auto& mc = config.component(Kind::Model);
  try {
    torch::NoGradGuard no_grad;
    criterion.loss(probe.outputs, probe.batch);
  } catch (const std::exception& e) {
    throw ConfigError(cc.node->loc.str() + ": criterion '" + cc.name + "' (plugin " +
                      registry.library_of(cc.component) + ") cannot take model '" + mc.name +
                      "''s outputs: " + first_line(e.what()));
  }
}

}  // namespace

std::unique_ptr<Setup> build_setup(const RunConfig& config, const Registry& registry, const DistInfo& dist,
                                   const device::Placement& placement) {
  auto s = std::make_unique<Setup>();
  // Test hook: a different initial model per rank, to show the start-up broadcast.
  const char* per_rank = std::getenv("RUNNER_TEST_PER_RANK_INIT");
  torch::manual_seed(config.run.seed + (per_rank && *per_rank == '1' ? dist.rank : 0));
  s->c = build_components(config, registry, DataflowContext{config.run.seed, dist.rank, dist.world_size},
                          placement.device);
  build_loaders(*s, config, dist, placement.is_cuda() && config.step.pin_memory);
  s->iters_per_epoch = s->train_loader->batches_per_epoch();
  s->total_iters = s->iters_per_epoch * config.run.num_epochs;
  s->scheduler = build_scheduler(config, registry, SchedulerContext{s->c.base_lr, s->iters_per_epoch, s->total_iters});
  const ModelProbe probe = probe_model(*s->c.model, s->c.dataflow.train->fields());
  check_criterion(config, registry, *s->c.criterion, probe);
  s->summary =
      model_summary(*s->c.model, config.component(Kind::Model).name, probe) + "device: " + placement.describe() + "\n";
  build_metric_set(*s, config, registry, probe);
  return s;
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace runner
