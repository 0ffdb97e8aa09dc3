#include "config/config.hpp"

#include <tuple>

#include <cmath>
#include <filesystem>
#include <regex>

#include "dist/communicator.hpp"
#include "runner/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace runner {

using config::Loc;
using config::Node;

const Schema& top_level_schema() {
  static const Schema schema = [] {
    Schema s;
    s.add("seed", ParamType::Int, "random seed of weights, data order and augmentation").def(543).min(0);
    s.add("num_epochs", ParamType::Int, "number of training epochs").required().min(1);
    s.add("validate_every", ParamType::Int, "validate every N epochs (and always after the last)").def(1).min(1);
    s.add("log_every_iters", ParamType::Int, "log train/batch_loss and lr every N iterations").def(50).min(1);
    s.add("output_path", ParamType::String, "root folder of run folders").def("experiments/runs");
    s.add("threads", ParamType::Int, "compute threads of this rank (0: all cores of this rank)").def(0).min(0);
    s.add("plugins", ParamType::List, "extra plugin libraries or folders (relative to this file)")
        .def(std::vector<std::string>{});
    s.add("checkpoint_every", ParamType::Int, "also checkpoint every N iterations (always at each epoch end)")
        .allow_null()
        .min(1);
    s.add("n_saved_checkpoints", ParamType::Int, "checkpoint files kept in <run>/checkpoints (newest)").def(2).min(1);
    s.add("resume_from", ParamType::String,
          "continue a run: a checkpoint file, a run folder (its newest valid checkpoint) or auto (newest run of this "
          "config)")
        .allow_null();
    s.add("resume_allow_changes", ParamType::List, "config keys that may differ from the checkpoint's (e.g. num_epochs)")
        .def(std::vector<std::string>{});
    s.add("deterministic", ParamType::Bool, "use deterministic algorithms only (reproducible runs)").def(false);
    s.add("amp", ParamType::String,
          "mixed precision: none (float32), bf16 (autocast to bfloat16; CPU and CUDA), fp16 (CUDA, with a loss scaler)")
        .def("none")
        .one_of({"none", "bf16", "fp16"});
    s.add("channels_last", ParamType::Bool, "NHWC memory layout for 4-D weights and inputs (convolutional models)")
        .def(false);
    s.add("grad_clip_norm", ParamType::Float, "clip the global gradient L2 norm to this value before each step")
        .allow_null()
        .greater_than(0);
    s.add("grad_accumulation_steps", ParamType::Int,
          "split each rank's batch into N micro-batches, summing gradients (gradients are synchronised once, "
          "after the last)")
        .def(1)
        .min(1);
    s.add("crash_iteration", ParamType::Int, "fail on purpose at this iteration (tests and demos)").allow_null().min(1);
    s.add("crash_rank", ParamType::Int, "the rank that fails at crash_iteration (-1: every rank)").def(-1).min(-1);
    s.add("crash_mode", ParamType::String,
          "how it fails: throw an error, kill itself, hang, or throw inside the next validation")
        .def("throw")
        .one_of({"throw", "kill", "hang", "validation"});
    return s;
  }();
  return schema;
}

namespace {
// The keys `best:` and `early_stopping:` share: which metric, and which way is better.
void add_score_keys(Schema& s, const char* metric_help, const char* metric, const char* mode) {
  s.add("metric", ParamType::String, metric_help).def(metric);
  s.add("mode", ParamType::String, "max: higher is better; min: lower is better").def(mode).one_of({"max", "min"});
}
}  // namespace

const Schema& best_schema() {
  static const Schema schema = [] {
    Schema s;
    add_score_keys(s, "validation metric that ranks the models", "val/accuracy", "max");
    s.add("n_saved", ParamType::Int, "best models kept in <run>/best").def(2).min(1);
    return s;
  }();
  return schema;
}

const Schema& early_stopping_schema() {
  static const Schema schema = [] {
    Schema s;
    add_score_keys(s, "validation metric to watch", "val/loss", "min");
    s.add("patience", ParamType::Int, "validations without improvement before stopping").def(5).min(1);
    s.add("min_delta", ParamType::Float, "smallest change that counts as an improvement").def(0).min(0);
    return s;
  }();
  return schema;
}

const Schema& dist_schema() {
  static const Schema schema = [] {
    Schema s;
    s.add("backend", ParamType::String, "collective backend: auto (nccl for CUDA tensors, else mpi), mpi or nccl")
        .def("auto")
        .one_of({"auto", "mpi", "nccl"});
    s.add("bucket_mb", ParamType::Float, "gradient bucket size in MB (all-reduced as soon as backward fills one)")
        .def(25)
        .greater_than(0);
    s.add("sync_batchnorm", ParamType::Bool,
          "BatchNorm statistics over the global batch (models built with runner::nn::BatchNorm2d)")
        .def(false);
    s.add("timeout", ParamType::Float, "seconds a collective may wait for a peer before every rank aborts (0: never)")
        .def(60)
        .min(0);
    return s;
  }();
  return schema;
}

const Schema& tracking_schema() {
  static const Schema schema = [] {
    Schema s;
    s.add("tensorboard", ParamType::Bool, "TensorBoard event files in <run>/tb (rank 0)").def(true);
    s.add("report", ParamType::Bool, "<run>/report.html with curves, refreshed at each validation").def(true);
    s.add("mlflow", ParamType::Map, "MLflow file store: {uri: file:./mlruns, experiment: NAME, run_name: NAME}")
        .allow_null();
    return s;
  }();
  return schema;
}

const Schema& mlflow_schema() {
  static const Schema schema = [] {
    Schema s;
    s.add("uri", ParamType::String, "the file store: file:PATH or a folder (relative to the working folder)")
        .def("file:./mlruns");
    s.add("experiment", ParamType::String, "experiment name (created if missing; default: the config's name)")
        .allow_null();
    s.add("run_name", ParamType::String, "run name shown by mlflow ui (default: the run folder's name)").allow_null();
    return s;
  }();
  return schema;
}

namespace {

constexpr const char* kComponentKeys[kNumSingleKinds] = {"dataflow", "model", "optimizer", "criterion", "scheduler"};
// Components a config may leave out, and what they default to.
const char* component_default(Kind k) {
  if (k == Kind::Criterion) return "cross_entropy";
  if (k == Kind::Scheduler) return "constant";
  return nullptr;
}

std::string describe_found(const Node& v) {
  switch (v.kind) {
    case Node::Kind::Null: return "null";
    case Node::Kind::Seq: return "a list";
    case Node::Kind::Map: return "a map";
    case Node::Kind::Scalar: return (v.quoted ? "the string \"" : "'") + v.scalar + (v.quoted ? "\"" : "'");
  }
  return "?";
}

bool parse_int(const std::string& s, int64_t* out) {
  static const std::regex re("[-+]?[0-9]+");
  if (!std::regex_match(s, re)) return false;
  try {
    *out = std::stoll(s);
    return true;
  } catch (...) {
    return false;
  }
}

bool parse_float(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v)) return false;
  *out = v;
  return true;
}

bool parse_bool(const std::string& s) {
  static const char* ok[] = {"true", "false", "True", "False", "TRUE", "FALSE", "yes", "no", "on", "off"};
  for (const char* o : ok)
    if (s == o) return true;
  return false;
}

// Checks one value against its spec. `path` is the full key path for messages.
void check_value(const Node& v, const ParamSpec& spec, const std::string& path) {
  auto fail = [&](const std::string& msg) { throw ConfigError(v.loc.str() + ": " + path + ": " + msg); };
  const std::string expected = std::string("expected ") + param_type_name(spec.type);
  if (v.is_null()) {
    if (spec.nullable || spec.type == ParamType::Any) return;
    fail(expected + " (" + spec.help + "), found null");
  }
  double number = 0;
  switch (spec.type) {
    case ParamType::Any: return;
    case ParamType::Bool:
      if (v.kind != Node::Kind::Scalar || v.quoted || !parse_bool(v.scalar))
        fail(expected + " (true or false), found " + describe_found(v));
      return;
    case ParamType::Int: {
      int64_t i = 0;
      if (v.kind != Node::Kind::Scalar || v.quoted || !parse_int(v.scalar, &i))
        fail(expected + " (" + spec.help + "), found " + describe_found(v));
      number = static_cast<double>(i);
      break;
    }
    case ParamType::Float:
      if (v.kind != Node::Kind::Scalar || v.quoted || !parse_float(v.scalar, &number))
        fail(std::string("expected a number (") + spec.help + "), found " + describe_found(v));
      break;
    case ParamType::String:
      if (v.kind != Node::Kind::Scalar) fail(expected + " (" + spec.help + "), found " + describe_found(v));
      if (!spec.choices.empty() &&
          std::find(spec.choices.begin(), spec.choices.end(), v.scalar) == spec.choices.end())
        fail("expected one of " + join(spec.choices) + ", found '" + v.scalar + "'" +
             did_you_mean(v.scalar, spec.choices));
      return;
    case ParamType::List:
      if (v.kind != Node::Kind::Seq) fail(expected + " (" + spec.help + "), found " + describe_found(v));
      return;
    case ParamType::Map:
      if (v.kind != Node::Kind::Map) fail(expected + " (" + spec.help + "), found " + describe_found(v));
      return;
  }
  auto fmt = [](double d) {
    std::ostringstream ss;
    ss << d;
    return ss.str();
  };
  if (spec.min_value) {
    const bool bad = spec.min_exclusive ? !(number > *spec.min_value) : number < *spec.min_value;
    if (bad)
      fail("must be " + std::string(spec.min_exclusive ? "> " : ">= ") + fmt(*spec.min_value) + " (" +
           spec.help + "), found " + v.scalar);
  }
  if (spec.max_value && number > *spec.max_value)
    fail("must be <= " + fmt(*spec.max_value) + " (" + spec.help + "), found " + v.scalar);
}

Node default_node(const ParamSpec& spec) {
  Loc loc;
  loc.file = "default";
  Node n = config::from_yaml(spec.default_value, "default");
  config::relocate(n, loc);
  return n;
}

// Validates `block` against `schema`; returns it with defaults filled, in schema
// order. `prefix` is the block's key path ("optimizer" or "" for the top level),
// `skip` lists keys validated elsewhere.
Node validate_block(const Node& block, const Schema& schema, const std::string& prefix,
                    const std::string& owner, const std::vector<std::string>& skip = {}) {
  const std::string dot = prefix.empty() ? "" : prefix + ".";
  std::vector<std::string> known = schema.names();
  known.insert(known.end(), skip.begin(), skip.end());
  for (const auto& [key, value] : block.entries) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    throw ConfigError(value.key_loc.str() + ": " + dot + key + ": unknown key for " + owner +
                      did_you_mean(key, known) + " (known keys: " + join(known) + ")");
  }
  Node out = Node::map_node(block.loc);
  out.key_loc = block.key_loc;
  if (const Node* name = block.find("name")) out.set("name", *name);
  for (const ParamSpec& spec : schema.params()) {
    if (const Node* v = block.find(spec.name)) {
      check_value(*v, spec, dot + spec.name);
      out.set(spec.name, *v);
    } else if (spec.is_required) {
      throw ConfigError(block.loc.str() + ": " + dot + spec.name + ": required key is missing for " + owner +
                        " (" + param_type_name(spec.type) + ": " + spec.help + ")");
    } else if (spec.default_value.IsDefined() && !spec.default_value.IsNull()) {
      out.set(spec.name, default_node(spec));
    } else {
      Node null;
      null.loc.file = "default";
      out.set(spec.name, null);
    }
  }
  for (const auto& k : skip)
    if (const Node* v = block.find(k)) out.set(k, *v);
  return out;
}

int64_t as_int(const Node& n) { return std::stoll(n.scalar); }

// A component block (a map): its `name` must be a registered component of `kind`; the
// block is then validated against that component's schema. `path` is its key path.
void validate_component(Node& block, Kind kind, const std::string& path, const Registry& registry) {
  const std::string kind_s = kind_name(kind);
  const std::vector<std::string> known = registry.names(kind);
  const std::string known_s = known.empty() ? std::string("none; load a plugin that has one") : join(known);
  const Node* name = block.find("name");
  if (!name || name->kind != Node::Kind::Scalar || name->scalar.empty())
    throw ConfigError(block.loc.str() + ": " + path + ".name: required key is missing (which " + kind_s +
                      "; known: " + known_s + ")");
  const Component* c = registry.find(kind, name->scalar);
  if (!c)
    throw ConfigError(name->loc.str() + ": " + path + ".name: unknown " + kind_s + " '" + name->scalar + "'" +
                      did_you_mean(name->scalar, known) + " (known: " + known_s + ")");
  block = validate_block(block, c->schema, path, kind_s + " '" + c->name + "'", {"name"});
}

// `metrics:` / `handlers:`: a list of component blocks (or bare names), each validated
// against its component's schema; absent or null means an empty list.
void resolve_component_list(Node& top, const std::string& key, Kind kind, const Registry& registry) {
  Node* list = top.find(key);
  const std::string kind_s = kind_name(kind);
  if (!list || list->is_null()) {
    Node empty;
    empty.kind = Node::Kind::Seq;
    empty.loc.file = "default";
    top.set(key, empty);
    return;
  }
  if (list->kind != Node::Kind::Seq)
    throw ConfigError(list->loc.str() + ": " + key + ": expected a list of " + kind_s + " blocks such as `[{name: " +
                      (registry.names(kind).empty() ? std::string("NAME") : registry.names(kind).front()) +
                      "}]`, found " + describe_found(*list));
  for (size_t i = 0; i < list->items.size(); ++i) {
    Node& item = list->items[i];
    const std::string path = key + "[" + std::to_string(i) + "]";
    if (item.kind == Node::Kind::Scalar) {  // bare name
      Node block = Node::map_node(item.loc);
      block.set("name", item);
      item = block;
    }
    if (!item.is_map())
      throw ConfigError(item.loc.str() + ": " + path + ": expected a " + kind_s + " name or a map with `name`, found " +
                        describe_found(item));
    validate_component(item, kind, path, registry);
  }
}

// An optional block with its own schema (`best:`, `early_stopping:`, `dist:`): a map is
// validated; absent or null becomes null (off), or with `defaults` the schema's defaults.
void resolve_optional_block(Node& top, const std::string& key, const Schema& schema, bool defaults) {
  Node* given = top.find(key);
  if (given && !given->is_null() && !given->is_map())
    throw ConfigError(given->loc.str() + ": " + key + ": expected a map (" + join(schema.names()) +
                      ") or null, found " + describe_found(*given));
  if (given && given->is_map()) {
    *given = validate_block(*given, schema, key, key);
  } else if (defaults) {
    Node empty = Node::map_node();
    empty.loc.file = "default";
    top.set(key, validate_block(empty, schema, key, key));
  } else {
    Node off;
    off.loc.file = "default";
    top.set(key, off);
  }
}

ComponentConfig component_config(const Node& block, Kind kind, const std::string& path, const Registry& registry) {
  ComponentConfig cc;
  cc.name = block.find("name")->scalar;
  cc.component = registry.find(kind, cc.name);
  cc.node = &block;
  cc.params = Params(config::to_yaml(block), path);
  return cc;
}

bool as_bool(const Node& n) {
  const std::string& v = n.scalar;
  return v == "true" || v == "True" || v == "TRUE" || v == "yes" || v == "on";
}

double as_float(const Node& n) { return std::strtod(n.scalar.c_str(), nullptr); }

}  // namespace

config::Node load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Node root = config::load_file(path);
  for (const auto& o : overrides) config::apply_override(root, o);
  return root;
}

std::vector<std::string> config_plugin_paths(const Node& root) {
  std::vector<std::string> out;
  const Node* plugins = root.find("plugins");
  if (!plugins || plugins->is_null()) return out;
  if (plugins->kind != Node::Kind::Seq)
    throw ConfigError(plugins->loc.str() + ": plugins: expected a list of plugin libraries or folders, found " +
                      describe_found(*plugins));
  for (const Node& p : plugins->items) {
    if (p.kind != Node::Kind::Scalar || p.scalar.empty())
      throw ConfigError(p.loc.str() + ": plugins: expected a path, found " + describe_found(p));
    fs::path fp(p.scalar);
    if (fp.is_relative() && p.loc.file != "command line") fp = fs::path(p.loc.file).parent_path() / fp;
    out.push_back(fp.lexically_normal().string());
  }
  return out;
}

RunConfig resolve_config(Node root, const std::string& path, const Registry& registry) {
  RunConfig rc;
  rc.path = path;
  rc.name = fs::path(path).stem().string();
  const std::vector<std::string> component_keys(std::begin(kComponentKeys), std::end(kComponentKeys));
  std::vector<std::string> skip = component_keys;
  skip.push_back("metrics");
  skip.push_back("handlers");
  skip.push_back("best");
  skip.push_back("early_stopping");
  skip.push_back("dist");
  skip.push_back("tracking");
  Node top = validate_block(root, top_level_schema(), "", "the config", skip);
  resolve_optional_block(top, "best", best_schema(), /*defaults=*/false);
  resolve_optional_block(top, "early_stopping", early_stopping_schema(), /*defaults=*/false);
  resolve_optional_block(top, "dist", dist_schema(), /*defaults=*/true);
  resolve_optional_block(top, "tracking", tracking_schema(), /*defaults=*/true);
  if (Node* mlflow = top.find("tracking")->find("mlflow"); mlflow && mlflow->is_map())
    *mlflow = validate_block(*mlflow, mlflow_schema(), "tracking.mlflow", "tracking.mlflow");
  for (const auto& [key, kind] : {std::pair<const char*, Kind>{"metrics", Kind::Metric}, {"handlers", Kind::Handler}})
    resolve_component_list(top, key, kind, registry);
  for (const char* key : {"metrics", "handlers", "best", "early_stopping", "dist", "tracking"}) {  // a fixed order, so print-config is a fixed point
    Node n = *top.find(key);
    top.erase(key);
    top.set(key, std::move(n));
  }

  for (int k = 0; k < kNumSingleKinds; ++k) {
    const Kind kind = static_cast<Kind>(k);
    const std::string key = kComponentKeys[k];
    Node* block = top.find(key);
    if (!block) {
      const char* def = component_default(kind);
      if (!def)
        throw ConfigError(root.loc.file + ": " + key + ": required key is missing (a " + key +
                          " block such as `" + key + ": {name: " + join(registry.names(kind), "|") + ", ...}`)");
      Node b = Node::map_node();
      b.loc.file = "default";
      b.set("name", Node::scalar_node(def, b.loc));
      block = &top.set(key, b);
    }
    if (!block->is_map())
      throw ConfigError(block->loc.str() + ": " + key + ": expected a component name or a map with `name`, found " +
                        describe_found(*block));
    validate_component(*block, kind, key, registry);
  }

  rc.tree = std::move(top);
  // Typed top-level values (already validated).
  rc.seed = static_cast<uint64_t>(as_int(*rc.tree.find("seed")));
  rc.num_epochs = as_int(*rc.tree.find("num_epochs"));
  rc.validate_every = as_int(*rc.tree.find("validate_every"));
  rc.log_every_iters = as_int(*rc.tree.find("log_every_iters"));
  rc.output_path = rc.tree.find("output_path")->scalar;
  rc.threads = static_cast<int>(as_int(*rc.tree.find("threads")));
  rc.deterministic = as_bool(*rc.tree.find("deterministic"));
  rc.amp = rc.tree.find("amp")->scalar;
  rc.channels_last = as_bool(*rc.tree.find("channels_last"));
  if (const Node* g = rc.tree.find("grad_clip_norm"); g && !g->is_null()) rc.grad_clip_norm = as_float(*g);
  rc.grad_accumulation_steps = as_int(*rc.tree.find("grad_accumulation_steps"));
  if (const Node* ci = rc.tree.find("crash_iteration"); ci && !ci->is_null()) rc.crash_iteration = as_int(*ci);
  rc.crash_rank = static_cast<int>(as_int(*rc.tree.find("crash_rank")));
  if (const Node* ce = rc.tree.find("checkpoint_every"); ce && !ce->is_null()) rc.checkpoint_every = as_int(*ce);
  rc.n_saved_checkpoints = static_cast<int>(as_int(*rc.tree.find("n_saved_checkpoints")));
  if (const Node* r = rc.tree.find("resume_from"); r && !r->is_null()) {
    rc.resume_from = r->scalar;
    if (r->loc.file != "command line" && rc.resume_from != "auto" && fs::path(rc.resume_from).is_relative() &&
        !fs::exists(rc.resume_from))
      rc.resume_from = (fs::path(r->loc.file).parent_path() / rc.resume_from).lexically_normal().string();
  }
  for (const Node& k : rc.tree.find("resume_allow_changes")->items) {
    if (k.kind != Node::Kind::Scalar)
      throw ConfigError(k.loc.str() + ": resume_allow_changes: expected config keys such as num_epochs, found " +
                        describe_found(k));
    rc.resume_allow_changes.push_back(k.scalar);
  }
  rc.crash_mode = rc.tree.find("crash_mode")->scalar;
  for (const auto& [key, out] : {std::pair<const char*, ScoreBlock*>{"best", &rc.best},
                                 {"early_stopping", &rc.early_stopping}}) {
    const Node* b = rc.tree.find(key);
    if (!b || !b->is_map()) continue;
    out->enabled = true;
    out->node = b;
    out->metric = b->find("metric")->scalar;
    out->maximize = b->find("mode")->scalar == "max";
    if (const Node* n = b->find("n_saved")) out->n_saved = static_cast<int>(as_int(*n));
    if (const Node* n = b->find("patience")) out->patience = static_cast<int>(as_int(*n));
    if (const Node* n = b->find("min_delta")) out->min_delta = as_float(*n);
  }
  const Node* dist = rc.tree.find("dist");
  rc.dist_backend = dist->find("backend")->scalar;
  if (rc.dist_backend != "auto") {
    const auto have = available_backends();
    if (std::find(have.begin(), have.end(), rc.dist_backend) == have.end())
      throw ConfigError(dist->find("backend")->loc.str() + ": dist.backend: '" + rc.dist_backend +
                        "' is not in this build (it has: " + join(have) + "; " + rc.dist_backend +
                        " needs LibTorch with CUDA and NCCL at build time)");
  }
  rc.bucket_mb = as_float(*dist->find("bucket_mb"));
  rc.dist_timeout = as_float(*dist->find("timeout"));
  rc.sync_batchnorm = as_bool(*dist->find("sync_batchnorm"));
  const Node* tracking = rc.tree.find("tracking");
  rc.tracking.tensorboard = as_bool(*tracking->find("tensorboard"));
  rc.tracking.report = as_bool(*tracking->find("report"));
  if (const Node* m = tracking->find("mlflow"); m && m->is_map()) {
    rc.tracking.mlflow = true;
    rc.tracking.mlflow_uri = m->find("uri")->scalar;
    const std::string scheme = rc.tracking.mlflow_uri.substr(0, rc.tracking.mlflow_uri.find(':') + 1);
    if (scheme != "file:" && rc.tracking.mlflow_uri.find("://") != std::string::npos)
      throw ConfigError(m->find("uri")->loc.str() + ": tracking.mlflow.uri: '" + rc.tracking.mlflow_uri +
                        "' is a tracking server; runner writes MLflow's file store: give file:PATH (see the README, "
                        "\"MLflow\", for serving or importing it)");
    if (const Node* e = m->find("experiment"); e && !e->is_null()) rc.tracking.mlflow_experiment = e->scalar;
    else rc.tracking.mlflow_experiment = rc.name;
    if (const Node* n = m->find("run_name"); n && !n->is_null()) rc.tracking.mlflow_run_name = n->scalar;
    if (rc.tracking.mlflow_experiment.empty())
      throw ConfigError(m->find("experiment")->loc.str() + ": tracking.mlflow.experiment: expected a non-empty name");
  }
  for (int k = 0; k < kNumSingleKinds; ++k) {
    const Node* block = rc.tree.find(kComponentKeys[k]);
    rc.components[k] = component_config(*block, static_cast<Kind>(k), kComponentKeys[k], registry);
  }
  for (const auto& [key, kind, out] : {std::tuple<const char*, Kind, std::vector<ComponentConfig>*>{"metrics", Kind::Metric, &rc.metrics},
                                       {"handlers", Kind::Handler, &rc.handlers}}) {
    const Node* list = rc.tree.find(key);
    for (size_t i = 0; i < list->items.size(); ++i)
      out->push_back(component_config(list->items[i], kind, std::string(key) + "[" + std::to_string(i) + "]", registry));
  }
  return rc;
}

void rethrow_param_error(const ParamError& e, const ComponentConfig& c) {
  const config::Node* v = c.node ? c.node->find(e.key()) : nullptr;
  const bool is_default = v && v->loc.file == "default";
  // A default value has no place in a file: point at the block that chose the component.
  const std::string where = v && !is_default ? v->loc.str() : c.node ? c.node->loc.str() : std::string("config");
  throw ConfigError(where + ": " + c.params.path() + "." + e.key() + ": " + e.what() +
                    (is_default ? " (the default value)" : ""));
}

}  // namespace runner
