#include "config/tree.hpp"

#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <sstream>

#include "runner/error.hpp"

namespace fs = std::filesystem;

namespace runner::config {

std::string Loc::str() const {
  if (!detail.empty()) return file + " '" + detail + "'";
  if (line <= 0) return file;
  return file + ":" + std::to_string(line) + ":" + std::to_string(col);
}

const Node* Node::find(const std::string& key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}
Node* Node::find(const std::string& key) {
  for (auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}
Node& Node::set(const std::string& key, Node value) {
  if (Node* n = find(key)) return *n = std::move(value);
  kind = Kind::Map;
  entries.emplace_back(key, std::move(value));
  return entries.back().second;
}
bool Node::erase(const std::string& key) {
  for (auto it = entries.begin(); it != entries.end(); ++it)
    if (it->first == key) {
      entries.erase(it);
      return true;
    }
  return false;
}
std::vector<std::string> Node::keys() const {
  std::vector<std::string> out;
  for (const auto& e : entries) out.push_back(e.first);
  return out;
}
Node Node::scalar_node(std::string text, Loc loc) {
  Node n;
  n.kind = Kind::Scalar;
  n.scalar = std::move(text);
  n.loc = std::move(loc);
  return n;
}
Node Node::map_node(Loc loc) {
  Node n;
  n.kind = Kind::Map;
  n.loc = std::move(loc);
  return n;
}

namespace {

Loc loc_of(const YAML::Mark& m, const std::string& file) {
  Loc l;
  l.file = file;
  if (!m.is_null()) l.line = m.line + 1, l.col = m.column + 1;
  return l;
}

const char* kComponentKeys[] = {"dataflow", "model", "optimizer", "criterion", "scheduler"};

// `model: resnet8` is shorthand for `model: {name: resnet8}`.
void normalize_components(Node& root) {
  if (!root.is_map()) return;
  for (const char* key : kComponentKeys) {
    Node* n = root.find(key);
    if (n && n->kind == Node::Kind::Scalar) {
      Node block = Node::map_node(n->loc);
      block.key_loc = n->key_loc;
      Node name = *n;
      name.key_loc = n->loc;
      block.set("name", std::move(name));
      *n = std::move(block);
    }
  }
}

std::string read_text(const std::string& path, const Loc& from) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw ConfigError((from.file.empty() ? path : from.str()) + ": '" + path +
                      "' is a directory, expected a YAML config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (from.file.empty()) throw ConfigError(path + ": cannot read config file (no such file or not readable)");
    throw ConfigError(from.str() + ": _base_: cannot read config file '" + path + "' (no such file or not readable)");
  }
  // Bounded: a config is small, and `runner /dev/zero` must not read forever.
  constexpr size_t kMaxBytes = size_t(16) << 20;
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxBytes)
      throw ConfigError((from.file.empty() ? path : from.str()) + ": '" + path +
                        "' is larger than 16 MiB; expected a YAML config file");
  }
  return text;
}

Node load_rec(const std::string& path, const Loc& from, std::vector<std::string>& stack) {
  std::error_code ec;
  const std::string canon = fs::weakly_canonical(path, ec).string();
  for (const auto& s : stack)
    if (s == canon)
      throw ConfigError(from.str() + ": _base_: inheritance cycle: '" + path + "' includes itself (through " + [&] {
        std::string chain;
        for (const auto& p : stack) chain += p + " -> ";
        return chain + canon;
      }() + ")");
  Node self = parse(read_text(path, from), path);
  if (self.is_null()) throw ConfigError(path + ": config file is empty (expected a map of config keys)");
  if (!self.is_map())
    throw ConfigError(self.loc.str() + ": expected a map of config keys at the top level, found " +
                      (self.kind == Node::Kind::Seq ? "a list" : "a single value '" + self.scalar + "'"));
  normalize_components(self);

  Node result = Node::map_node(self.loc);
  if (const Node* base = self.find("_base_")) {
    std::vector<const Node*> bases;
    if (base->kind == Node::Kind::Scalar)
      bases.push_back(base);
    else if (base->kind == Node::Kind::Seq)
      for (const auto& b : base->items) bases.push_back(&b);
    else
      throw ConfigError(base->loc.str() + ": _base_: expected a file path or a list of file paths");
    stack.push_back(canon);
    for (const Node* b : bases) {
      if (b->kind != Node::Kind::Scalar || b->scalar.empty())
        throw ConfigError(b->loc.str() + ": _base_: expected a file path");
      fs::path p(b->scalar);
      if (p.is_relative()) p = fs::path(path).parent_path() / p;
      merge(result, load_rec(p.lexically_normal().string(), b->loc, stack));
    }
    stack.pop_back();
    self.erase("_base_");
  }
  merge(result, self);
  return result;
}

}  // namespace

void relocate(Node& n, const Loc& loc) {
  n.loc = loc;
  n.key_loc = loc;
  for (auto& i : n.items) relocate(i, loc);
  for (auto& e : n.entries) relocate(e.second, loc);
}

Node from_yaml(const YAML::Node& y, const std::string& file, int depth) {
  if (depth > kMaxDepth)
    throw ConfigError(loc_of(y.Mark(), file).str() + ": config is nested more than " + std::to_string(kMaxDepth) +
                      " levels deep");
  Node n;
  n.loc = loc_of(y.Mark(), file);
  switch (y.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: n.kind = Node::Kind::Null; break;
    case YAML::NodeType::Scalar:
      n.kind = Node::Kind::Scalar;
      n.scalar = y.Scalar();
      n.quoted = y.Tag() == "!";
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Kind::Seq;
      for (const auto& item : y) n.items.push_back(from_yaml(item, file, depth + 1));
      break;
    case YAML::NodeType::Map:
      n.kind = Node::Kind::Map;
      for (const auto& kv : y) {
        const Loc kloc = loc_of(kv.first.Mark(), file);
        if (!kv.first.IsScalar())
          throw ConfigError(kloc.str() + ": map keys must be plain names, found a " +
                            (kv.first.IsMap()        ? "map"
                             : kv.first.IsSequence() ? "list"
                                                     : "null"));
        const std::string key = kv.first.Scalar();
        if (const Node* prev = n.find(key))
          throw ConfigError(kloc.str() + ": " + key + ": duplicate key (first set at line " +
                            std::to_string(prev->key_loc.line) + ")");
        Node value = from_yaml(kv.second, file, depth + 1);
        value.key_loc = kloc;
        if (value.loc.line == 0) value.loc = kloc;  // null values have no mark of their own
        n.entries.emplace_back(key, std::move(value));
      }
      break;
  }
  return n;
}

Node parse(const std::string& text, const std::string& file) {
  YAML::Node y;
  try {
    y = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string msg = e.msg;
    if (msg.find("depth") != std::string::npos || msg.find("recursion") != std::string::npos)
      msg = "nested too deeply (" + msg + ")";
    throw ConfigError(loc_of(e.mark, file).str() + ": not valid YAML: " + msg);
  }
  return from_yaml(y, file);
}

Node load_file(const std::string& path) {
  std::vector<std::string> stack;
  return load_rec(path, Loc{}, stack);
}

void merge(Node& dst, const Node& src) {
  if (dst.is_map() && src.is_map()) {
    const Node* a = dst.find("name");
    const Node* b = src.find("name");
    if (a && b && a->kind == Node::Kind::Scalar && b->kind == Node::Kind::Scalar && a->scalar != b->scalar) {
      Loc key_loc = dst.key_loc;
      dst = src;
      if (dst.key_loc.file.empty()) dst.key_loc = key_loc;
      return;
    }
    for (const auto& [key, value] : src.entries) {
      if (Node* existing = dst.find(key))
        merge(*existing, value);
      else
        dst.entries.emplace_back(key, value);
    }
    return;
  }
  Loc key_loc = dst.key_loc;
  dst = src;
  if (dst.key_loc.file.empty()) dst.key_loc = key_loc;
}

namespace {

bool is_index(const std::string& part) {
  return !part.empty() && part.find_first_not_of("0123456789") == std::string::npos;
}

std::vector<std::string> key_path(const std::string& path, const Loc& loc) {
  std::vector<std::string> keys;
  std::stringstream ss(path);
  for (std::string part; std::getline(ss, part, '.');) {
    if (part.empty() ||
        part.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos)
      throw ConfigError(loc.str() + ": '" + path + "' is not a valid key path (expected names joined by '.')");
    keys.push_back(part);
  }
  if (path.empty() || path.back() == '.') throw ConfigError(loc.str() + ": '" + path + "' is not a valid key path");
  return keys;
}

// The node at keys[0..n) of `root`: maps by key, lists by index (`milestones.1`); null when
// a map key is absent. A bad index is an error naming the list's length.
Node* walk(Node& root, const std::vector<std::string>& keys, size_t n, const Loc& loc) {
  Node* cur = &root;
  for (size_t i = 0; i < n && cur; ++i) {
    const std::string at = join_keys(keys, i + 1);
    if (cur->kind == Node::Kind::Seq) {
      if (!is_index(keys[i]) || std::stoull(keys[i]) >= cur->items.size())
        throw ConfigError(loc.str() + ": " + at + ": the list has " + std::to_string(cur->items.size()) + " items" +
                          (cur->items.empty() ? "" : " (indices 0.." + std::to_string(cur->items.size() - 1) + ")"));
      cur = &cur->items[std::stoull(keys[i])];
    } else {
      cur = cur->is_map() ? cur->find(keys[i]) : nullptr;
    }
  }
  return cur;
}

Node parse_value(const std::string& text, const Loc& loc) {
  Node value;
  try {
    value = from_yaml(YAML::Load(text), "command line");
  } catch (const YAML::Exception& e) {
    throw ConfigError(loc.str() + ": value is not valid YAML: " + e.msg);
  }
  relocate(value, loc);  // every node of the override points at the override text
  return value;
}

}  // namespace

std::string join_keys(const std::vector<std::string>& keys, size_t n) {
  std::string s;
  for (size_t i = 0; i < n && i < keys.size(); ++i) s += (i ? "." : "") + keys[i];
  return s;
}

// key=value (merged in), +key=value (adds a key the config does not have), ~key (removes
// it: the base's or the schema's default applies), list items by index (list.1=value).
void apply_override(Node& root, const std::string& assignment) {
  Loc loc;
  loc.file = "command line";
  loc.detail = assignment;
  const bool add = assignment.rfind('+', 0) == 0, remove = assignment.rfind('~', 0) == 0;
  const std::string text = add || remove ? assignment.substr(1) : assignment;
  const auto eq = text.find('=');
  if (remove) {
    if (eq != std::string::npos) throw ConfigError(loc.str() + ": ~key removes a key and takes no value");
    const std::vector<std::string> keys = key_path(text, loc);
    Node* parent = walk(root, keys, keys.size() - 1, loc);
    if (!parent || !parent->is_map() || !parent->erase(keys.back()))
      throw ConfigError(loc.str() + ": " + text + ": there is no such key to remove");
    return;
  }
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(loc.str() +
                      ": expected an override of the form key.path=value (+key=value adds a key, ~key "
                      "removes one)");
  const std::vector<std::string> keys = key_path(text.substr(0, eq), loc);
  Node value = parse_value(text.substr(eq + 1), loc);
  if (add && walk(root, keys, keys.size(), loc))
    throw ConfigError(loc.str() + ": " + text.substr(0, eq) + " is already set; change it with " + text.substr(0, eq) +
                      "=...");
  bool indexed = false;
  for (const auto& k : keys) indexed = indexed || is_index(k);
  if (indexed) {  // into an existing list: replace the item in place
    Node* target = walk(root, keys, keys.size(), loc);
    if (!target) throw ConfigError(loc.str() + ": " + text.substr(0, eq) + ": there is no such key");
    *target = std::move(value);
    return;
  }
  Node nested = std::move(value);
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
    Node parent = Node::map_node(loc);
    parent.key_loc = loc;
    parent.set(*it, std::move(nested));
    nested = std::move(parent);
  }
  normalize_components(nested);
  merge(root, nested);
}

namespace {

const Node* find_path(const Node& root, const std::string& path) {
  const Node* cur = &root;
  std::stringstream ss(path);
  for (std::string k; cur && std::getline(ss, k, '.');) {
    if (cur->kind == Node::Kind::Seq)
      cur = is_index(k) && std::stoull(k) < cur->items.size() ? &cur->items[std::stoull(k)] : nullptr;
    else
      cur = cur->is_map() ? cur->find(k) : nullptr;
  }
  return cur;
}

std::string env_value(const std::string& ref, const Loc& loc) {
  const std::string spec = ref.substr(7);  // after "oc.env:"
  const auto comma = spec.find(',');
  const std::string var = spec.substr(0, comma);
  if (const char* v = std::getenv(var.c_str())) return v;
  if (comma != std::string::npos) return spec.substr(comma + 1);
  throw ConfigError(loc.str() + ": ${" + ref + "}: the environment variable " + var +
                    " is not set (give a default: ${oc.env:" + var + ",VALUE})");
}

std::string interpolate(const Node& root, const std::string& text, const Loc& loc, int depth) {
  if (depth > 16) throw ConfigError(loc.str() + ": '" + text + "': interpolations refer to each other in a cycle");
  std::string out;
  size_t i = 0;
  for (size_t p; (p = text.find("${", i)) != std::string::npos;) {
    const size_t e = text.find('}', p);
    if (e == std::string::npos) throw ConfigError(loc.str() + ": '" + text + "': '${' without its '}'");
    out += text.substr(i, p - i);
    const std::string ref = text.substr(p + 2, e - p - 2);
    if (ref.rfind("oc.env:", 0) == 0) {
      out += env_value(ref, loc);
    } else {
      const Node* target = find_path(root, ref);
      if (!target || target->kind != Node::Kind::Scalar)
        throw ConfigError(loc.str() + ": ${" + ref + "}: " +
                          (target ? std::string("is not a single value") : "there is no such key in the config") +
                          " (interpolation: ${path.to.key} or ${oc.env:VAR})");
      out += interpolate(root, target->scalar, target->loc, depth + 1);
    }
    i = e + 1;
  }
  return out + text.substr(i);
}

void resolve_under(Node& n, const Node& root) {
  if (n.kind == Node::Kind::Scalar && n.scalar.find("${") != std::string::npos) {
    n.scalar = interpolate(root, n.scalar, n.loc, 0);
    if (!n.quoted && (n.scalar == "null" || n.scalar == "~")) n.kind = Node::Kind::Null, n.scalar.clear();
  }
  for (auto& item : n.items) resolve_under(item, root);
  for (auto& [key, value] : n.entries) resolve_under(value, root);
}

}  // namespace

void resolve_interpolations(Node& root) { resolve_under(root, root); }

std::vector<std::string> split_params(const std::string& params) {
  std::vector<std::string> out;
  std::stringstream ss(params);
  for (std::string part; std::getline(ss, part, ';');) {
    const auto b = part.find_first_not_of(" \t"), e = part.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(part.substr(b, e - b + 1));
  }
  return out;
}

YAML::Node to_yaml(const Node& n) {
  switch (n.kind) {
    case Node::Kind::Null: return YAML::Node(YAML::NodeType::Null);
    case Node::Kind::Scalar: return YAML::Node(n.scalar);
    case Node::Kind::Seq: {
      YAML::Node y(YAML::NodeType::Sequence);
      for (const auto& i : n.items) y.push_back(to_yaml(i));
      return y;
    }
    case Node::Kind::Map: {
      YAML::Node y(YAML::NodeType::Map);
      for (const auto& [k, v] : n.entries) y[k] = to_yaml(v);
      return y;
    }
  }
  return YAML::Node();
}

namespace {
bool is_flat(const Node& n) {
  if (n.kind == Node::Kind::Map) return false;
  for (const auto& i : n.items)
    if (!is_flat(i)) return false;
  return true;
}
void emit_rec(YAML::Emitter& out, const Node& n) {
  switch (n.kind) {
    case Node::Kind::Null: out << YAML::Null; break;
    case Node::Kind::Scalar:
      if (n.quoted || n.scalar.empty())
        out << YAML::DoubleQuoted << n.scalar;
      else
        out << n.scalar;
      break;
    case Node::Kind::Seq:
      if (is_flat(n)) out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& i : n.items) emit_rec(out, i);
      out << YAML::EndSeq;
      break;
    case Node::Kind::Map:
      out << YAML::BeginMap;
      for (const auto& [k, v] : n.entries) {
        out << YAML::Key << k << YAML::Value;
        emit_rec(out, v);
      }
      out << YAML::EndMap;
      break;
  }
}
}  // namespace

std::string emit(const Node& n) {
  YAML::Emitter out;
  emit_rec(out, n);
  return std::string(out.c_str()) + "\n";
}

}  // namespace runner::config

namespace runner::config {
namespace {
void flatten_rec(const Node& n, const std::string& path, std::map<std::string, std::string>& out) {
  if (n.kind == Node::Kind::Map && !n.entries.empty()) {
    for (const auto& [k, v] : n.entries) flatten_rec(v, path.empty() ? k : path + "." + k, out);
    return;
  }
  YAML::Emitter e;
  e << YAML::Flow;
  emit_rec(e, n);
  out[path] = e.c_str();
}
}  // namespace

std::map<std::string, std::string> flatten(const Node& n) {
  std::map<std::string, std::string> out;
  flatten_rec(n, "", out);
  return out;
}

std::vector<KeyDiff> differing_keys(const Node& a, const Node& b) {
  std::map<std::string, std::string> fa = flatten(a), fb = flatten(b);
  for (const auto& [k, v] : fa) fb.emplace(k, "absent");  // both maps get the union of keys
  for (const auto& [k, v] : fb) fa.emplace(k, "absent");
  std::vector<KeyDiff> out;
  for (const auto& [k, va] : fa)
    if (fb.at(k) != va) out.push_back({k, va, fb.at(k)});
  return out;
}

}  // namespace runner::config
