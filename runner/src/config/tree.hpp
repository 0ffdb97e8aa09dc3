#pragma once
// The config as a tree whose every value remembers where it came from (file, line,
// column, or the command-line override that set it), so errors found after `_base_`
// merging and overrides still point at the right place.
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace runner::config {

struct Loc {
  std::string file;  ///< config file path, or "command line" for overrides
  int line = 0;      ///< 1-based; 0 when unknown
  int col = 0;
  std::string detail;       ///< e.g. the override text
  std::string str() const;  ///< "file:line:col" / "command line 'a.b=1'"
};

struct Node {
  enum class Kind { Null, Scalar, Seq, Map };
  Kind kind = Kind::Null;
  std::string scalar;
  bool quoted = false;                                ///< a quoted scalar is always a string
  std::vector<Node> items;                            ///< Seq
  std::vector<std::pair<std::string, Node>> entries;  ///< Map, in file order
  Loc loc;                                            ///< where the value is
  Loc key_loc;                                        ///< where its key is (map entries)

  bool is_map() const { return kind == Kind::Map; }
  bool is_null() const { return kind == Kind::Null; }
  const Node* find(const std::string& key) const;
  Node* find(const std::string& key);
  Node& set(const std::string& key, Node value);  ///< replace or append
  bool erase(const std::string& key);
  std::vector<std::string> keys() const;
  static Node scalar_node(std::string text, Loc loc = {});
  static Node map_node(Loc loc = {});
};

constexpr int kMaxDepth = 64;

/// Points `n` and everything under it (values and keys) at `loc`: for values that come
/// from the command line or from schema defaults rather than from a file.
void relocate(Node& n, const Loc& loc);

/// Converts a parsed YAML document. Rejects duplicate map keys, non-scalar keys and
/// nesting deeper than kMaxDepth, with ConfigError at the offending location.
Node from_yaml(const YAML::Node& y, const std::string& file, int depth = 0);

/// Parses YAML text from `file` (for messages). Throws ConfigError on syntax errors.
Node parse(const std::string& text, const std::string& file);

/// Loads a config file and resolves its `_base_` chain (paths relative to the
/// including file; bases merged in order, the including file wins; cycles rejected).
Node load_file(const std::string& path);

/// Deep merge of `src` into `dst`: maps merge key by key, anything else is replaced.
/// Two maps that both have a `name` with different values are components of different
/// kinds: `src` replaces `dst` whole (a resnet8's options do not carry over to mlp).
void merge(Node& dst, const Node& src);

/// Applies an override: `a.b.c=value` (value parsed as YAML, merged in), `+a.b=value` (a key
/// the config does not set yet), `~a.b` (removed: the base's or the default applies) and list
/// items by index (`scheduler.milestones.1=[1ep, 0.2]`). Throws ConfigError if malformed.
void apply_override(Node& root, const std::string& assignment);

/// Resolves `${path.to.key}` (another value of the config) and `${oc.env:VAR}` /
/// `${oc.env:VAR,default}` in every scalar; an unresolvable one is a ConfigError at its place.
void resolve_interpolations(Node& root);

/// "a.b" from the first n keys.
std::string join_keys(const std::vector<std::string>& keys, size_t n);

/// Splits the seeds' `--params "a=1;b.c=2"` form into assignments.
std::vector<std::string> split_params(const std::string& params);

YAML::Node to_yaml(const Node& n);
std::string emit(const Node& n);  ///< block-style YAML text

/// "a.b.c" -> value (flow-style YAML) for every leaf; lists are leaves.
std::map<std::string, std::string> flatten(const Node& n);
struct KeyDiff {
  std::string key;   ///< "a.b.c"
  std::string a, b;  ///< flow-style values, or "absent"
};
/// The leaf keys whose values differ between `a` and `b`, sorted by key.
std::vector<KeyDiff> differing_keys(const Node& a, const Node& b);

}  // namespace runner::config
