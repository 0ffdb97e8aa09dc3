#include "config/config.hpp"

#include <tuple>

#include <cmath>
#include <filesystem>
#include <regex>

#include "runner/error.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace runner {

using config::Loc;
using config::Node;

const Schema& top_level_schema() {
  static const Schema schema = [] {
    Schema s;
    for (const Schema* block : {&schema_of<RunOptions>(), &schema_of<CheckpointOptions>(), &schema_of<StepOptions>(),
                                &schema_of<FaultOptions>()})
      for (const ParamSpec& spec : block->params()) s.add(spec.name, spec.type, spec.help) = spec;
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
      if (!spec.choices.empty() && std::find(spec.choices.begin(), spec.choices.end(), v.scalar) == spec.choices.end())
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
      fail("must be " + std::string(spec.min_exclusive ? "> " : ">= ") + fmt(*spec.min_value) + " (" + spec.help +
           "), found " + v.scalar);
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
Node validate_block(const Node& block, const Schema& schema, const std::string& prefix, const std::string& owner,
                    const std::vector<std::string>& skip = {}) {
  const std::string dot = prefix.empty() ? "" : prefix + ".";
  std::vector<std::string> known = schema.names();
  known.insert(known.end(), skip.begin(), skip.end());
  for (const auto& [key, value] : block.entries) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    throw ConfigError(value.key_loc.str() + ": " + dot + key + ": unknown key for " + owner + did_you_mean(key, known) +
                      " (known keys: " + join(known) + ")");
  }
  Node out = Node::map_node(block.loc);
  out.key_loc = block.key_loc;
  if (const Node* name = block.find("name")) out.set("name", *name);
  for (const ParamSpec& spec : schema.params()) {
    if (const Node* v = block.find(spec.name)) {
      check_value(*v, spec, dot + spec.name);
      out.set(spec.name, *v);
    } else if (spec.is_required) {
      throw ConfigError(block.loc.str() + ": " + dot + spec.name + ": required key is missing for " + owner + " (" +
                        param_type_name(spec.type) + ": " + spec.help + ")");
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
  std::vector<std::string> host_keys = {"name"};
  if (kind == Kind::Optimizer) host_keys.push_back("no_decay");  // engine/param_groups.hpp
  if (kind == Kind::Model) host_keys.push_back("pretrained");    // engine/build.cpp
  block = validate_block(block, c->schema, path, kind_s + " '" + c->name + "'", host_keys);
  if (const Node* nd = block.find("no_decay"); nd && !nd->is_null()) {
    bool ok = nd->kind == Node::Kind::Seq && !nd->items.empty();
    for (const Node& item : nd->items) ok = ok && item.kind == Node::Kind::Scalar && !item.scalar.empty();
    if (!ok)
      throw ConfigError(nd->loc.str() + ": " + path +
                        ".no_decay: expected a list of parameter kinds (bias, norm, 1d), names or globs, such as "
                        "[bias, norm], found " +
                        describe_found(*nd));
  }
  if (const Node* pre = block.find("pretrained"); pre && !pre->is_null()) {
    if (pre->kind != Node::Kind::Scalar || pre->scalar.empty())
      throw ConfigError(pre->loc.str() + ": " + path + ".pretrained: expected a .safetensors file, found " +
                        describe_found(*pre));
    const std::string& f = pre->scalar;
    if (f.size() < 12 || f.compare(f.size() - 12, 12, ".safetensors") != 0)
      throw ConfigError(pre->loc.str() + ": " + path + ".pretrained: '" + f +
                        "' is not a .safetensors file (convert a .pth: python -c \"import torch; from "
                        "safetensors.torch import save_file; save_file(torch.load('w.pth'), 'w.safetensors')\")");
  }
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

// A block that `true` switches on with its defaults (`ema:`, `profile:`): true gives the
// defaults, false/null/absent is off, a map is validated.
void resolve_switchable_block(Node& top, const std::string& key, const Schema& schema) {
  Node* given = top.find(key);
  if (given && given->kind == Node::Kind::Scalar) {
    if (given->quoted || !parse_bool(given->scalar))
      throw ConfigError(given->loc.str() + ": " + key + ": expected true, false or a map (" + join(schema.names()) +
                        "), found '" + given->scalar + "'");
    const config::Loc loc = given->loc;
    if (options::as_bool(*given)) {
      Node empty = Node::map_node(loc);
      top.set(key, validate_block(empty, schema, key, key));
    } else {
      Node off;
      off.loc = loc;
      top.set(key, off);
    }
    return;
  }
  resolve_optional_block(top, key, schema, /*defaults=*/false);
}

ComponentConfig component_config(const Node& block, Kind kind, const std::string& path, const Registry& registry) {
  ComponentConfig cc;
  cc.name = block.find("name")->scalar;
  cc.component = registry.find(kind, cc.name);
  cc.node = &block;
  cc.params = Params(config::to_yaml(block), path);
  return cc;
}

}  // namespace

config::Node load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Node root = config::load_file(path);
  for (const auto& o : overrides) config::apply_override(root, o);
  config::resolve_interpolations(root);
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

namespace {

// Validates the nested host blocks in place (absent or null: off, or the defaults).
void resolve_host_blocks(Node& top) {
  resolve_optional_block(top, "best", schema_of<BestOptions>(), /*defaults=*/false);
  resolve_optional_block(top, "early_stopping", schema_of<EarlyStoppingOptions>(), /*defaults=*/false);
  resolve_switchable_block(top, "ema", schema_of<EmaOptions>());
  resolve_switchable_block(top, "profile", schema_of<ProfileOptions>());
  resolve_optional_block(top, "dist", schema_of<DistOptions>(), /*defaults=*/true);
  resolve_optional_block(top, "tracking", schema_of<TrackingOptions>(), /*defaults=*/true);
  if (Node* mlflow = top.find("tracking")->find("mlflow"); mlflow && mlflow->is_map())
    *mlflow = validate_block(*mlflow, schema_of<MlflowOptions>(), "tracking.mlflow", "tracking.mlflow");
}

// The component blocks: a default for those a config may leave out, then each block
// against its component's schema.
void resolve_components(Node& top, const Node& root, const Registry& registry) {
  for (const auto& [key, kind] : {std::pair<const char*, Kind>{"metrics", Kind::Metric}, {"handlers", Kind::Handler}})
    resolve_component_list(top, key, kind, registry);
  for (int k = 0; k < kNumSingleKinds; ++k) {
    const Kind kind = static_cast<Kind>(k);
    const std::string key = kComponentKeys[k];
    Node* block = top.find(key);
    if (!block) {
      const char* def = component_default(kind);
      if (!def)
        throw ConfigError(root.loc.file + ": " + key + ": required key is missing (a " + key + " block such as `" +
                          key + ": {name: " + join(registry.names(kind), "|") + ", ...}`)");
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
}

// The typed blocks and component configs of a resolved tree.
void read_run_config(RunConfig& rc, const Registry& registry) {
  const Node& t = rc.tree;
  rc.run = read_block<RunOptions>(t);
  rc.run.check(t);
  rc.checkpoint = read_block<CheckpointOptions>(t);
  rc.checkpoint.check(t);
  rc.step = read_block<StepOptions>(t);
  rc.faults = read_block<FaultOptions>(t);
  if (t.find("best")->is_map()) rc.best = read_block<BestOptions>(*t.find("best"));
  if (t.find("early_stopping")->is_map())
    rc.early_stopping = read_block<EarlyStoppingOptions>(*t.find("early_stopping"));
  if (t.find("ema")->is_map()) rc.ema = read_block<EmaOptions>(*t.find("ema"));
  if (t.find("profile")->is_map()) rc.profile = read_block<ProfileOptions>(*t.find("profile"));
  rc.dist = read_block<DistOptions>(*t.find("dist"));
  rc.tracking = read_block<TrackingOptions>(*t.find("tracking"));
  if (rc.tracking.mlflow) {
    if (!rc.tracking.mlflow->experiment) rc.tracking.mlflow->experiment = rc.name;
    rc.tracking.mlflow->check(*t.find("tracking")->find("mlflow"));
  }
  for (int k = 0; k < kNumSingleKinds; ++k)
    rc.components[k] = component_config(*t.find(kComponentKeys[k]), static_cast<Kind>(k), kComponentKeys[k], registry);
  for (const auto& [key, kind, out] :
       {std::tuple<const char*, Kind, std::vector<ComponentConfig>*>{"metrics", Kind::Metric, &rc.metrics},
        {"handlers", Kind::Handler, &rc.handlers}}) {
    const Node& list = *t.find(key);
    for (size_t i = 0; i < list.items.size(); ++i)
      out->push_back(component_config(list.items[i], kind, std::string(key) + "[" + std::to_string(i) + "]", registry));
  }
}

}  // namespace

RunConfig resolve_config(Node root, const std::string& path, const Registry& registry) {
  RunConfig rc;
  rc.path = path;
  rc.name = fs::path(path).stem().string();
  std::vector<std::string> skip(std::begin(kComponentKeys), std::end(kComponentKeys));
  const char* nested[] = {"metrics", "handlers", "best", "early_stopping", "ema", "profile", "dist", "tracking"};
  skip.insert(skip.end(), std::begin(nested), std::end(nested));
  Node top = validate_block(root, top_level_schema(), "", "the config", skip);
  resolve_host_blocks(top);
  resolve_components(top, root, registry);
  for (const char* key : nested) {  // a fixed order, so print-config is a fixed point
    Node n = *top.find(key);
    top.erase(key);
    top.set(key, std::move(n));
  }
  rc.tree = std::move(top);
  read_run_config(rc, registry);
  return rc;
}

double RunOptions::max_time_seconds() const {
  if (!max_time) return 0;
  double seconds = 0;
  parse_duration(*max_time, &seconds);
  return seconds;
}

void RunOptions::check(const Node& top) const {
  double seconds = 0;
  if (max_time && (!parse_duration(*max_time, &seconds) || seconds <= 0)) {
    const Node* n = top.find("max_time");
    throw ConfigError(n->loc.str() +
                      ": max_time: expected a duration such as 90s, 45m, 4h or 1d12h (a number "
                      "followed by s, m, h or d), found '" +
                      *max_time + "'");
  }
}

void CheckpointOptions::check(const Node& top) {
  if (resume_from) {
    const Node* r = top.find("resume_from");
    if (r->loc.file != "command line" && *resume_from != "auto" && fs::path(*resume_from).is_relative() &&
        !fs::exists(*resume_from))
      resume_from = (fs::path(r->loc.file).parent_path() / *resume_from).lexically_normal().string();
  }
  for (const Node& k : top.find("resume_allow_changes")->items)
    if (k.kind != Node::Kind::Scalar)
      throw ConfigError(k.loc.str() + ": resume_allow_changes: expected config keys such as num_epochs, found " +
                        describe_found(k));
}

void MlflowOptions::check(const Node& block) const {
  const std::string scheme = uri.substr(0, uri.find(':') + 1);
  const bool server = scheme == "http:" || scheme == "https:";
  if (server && uri.find("://") != scheme.size() - 1)
    throw ConfigError(block.find("uri")->loc.str() + ": tracking.mlflow.uri: '" + uri +
                      "' is not a server address; expected http://HOST:PORT or https://HOST");
  if (!server && scheme != "file:" && uri.find("://") != std::string::npos)
    throw ConfigError(block.find("uri")->loc.str() + ": tracking.mlflow.uri: '" + uri +
                      "': runner logs to MLflow's file store (file:PATH) or to a tracking server (http://HOST:PORT, "
                      "https://HOST); not to " + scheme.substr(0, scheme.size() - 1));
  if (experiment && experiment->empty())
    throw ConfigError(block.find("experiment")->loc.str() + ": tracking.mlflow.experiment: expected a non-empty name");
}

namespace options {
bool as_bool(const Node& n) {
  const std::string& v = n.scalar;
  return v == "true" || v == "True" || v == "TRUE" || v == "yes" || v == "on";
}
}  // namespace options

void rethrow_param_error(const ParamError& e, const ComponentConfig& c) {
  const config::Node* v = c.node ? c.node->find(e.key()) : nullptr;
  const bool is_default = v && v->loc.file == "default";
  // A default value has no place in a file: point at the block that chose the component.
  const std::string where = v && !is_default ? v->loc.str() : c.node ? c.node->loc.str() : std::string("config");
  throw ConfigError(where + ": " + c.params.path() + "." + e.key() + ": " + e.what() +
                    (is_default ? " (the default value)" : ""));
}

}  // namespace runner
