#pragma once
// Parameter schemas (what a component accepts) and validated parameter values
// (what its factory receives). The host validates every config block against the
// component's Schema before any factory runs: unknown keys, wrong types, values out
// of range and missing required keys never reach plugin code.
#include <yaml-cpp/yaml.h>

#include <optional>
#include <string>
#include <vector>

#include "runner/api.hpp"
#include "runner/error.hpp"

namespace runner {

enum class ParamType { Bool, Int, Float, String, List, Map, Any };
RUNNER_API const char* param_type_name(ParamType t);
/// The shortest decimal text that reads back as exactly `v` ("0.286", not "0.28599999999999998").
RUNNER_API std::string format_number(double v);

/// One declared parameter. Built fluently: `s.add("lr", ParamType::Float, "learning rate").required().min(0)`.
struct RUNNER_API ParamSpec {
  std::string name;
  ParamType type = ParamType::Any;
  std::string help;
  YAML::Node default_value;  ///< Null node: no default (then `required` or the value may be null)
  bool is_required = false;
  bool nullable = false;                       ///< null is an accepted value (e.g. "not set")
  std::optional<double> min_value, max_value;  ///< inclusive bounds for Int / Float
  bool min_exclusive = false;
  std::vector<std::string> choices;  ///< allowed values for String

  template <class T>
  ParamSpec& def(const T& value) {
    default_value = YAML::Node(value);
    return *this;
  }
  ParamSpec& def(double value);  ///< written in its shortest exact form
  ParamSpec& def(const std::vector<double>& values);
  ParamSpec& required() {  ///< no default: the config must give it
    is_required = true;
    default_value = YAML::Node();
    return *this;
  }
  ParamSpec& allow_null() {
    nullable = true;
    return *this;
  }
  ParamSpec& min(double v) {
    min_value = v;
    min_exclusive = false;
    return *this;
  }
  ParamSpec& greater_than(double v) {
    min_value = v;
    min_exclusive = true;
    return *this;
  }
  ParamSpec& max(double v) {
    max_value = v;
    return *this;
  }
  ParamSpec& one_of(std::vector<std::string> values) {
    choices = std::move(values);
    return *this;
  }
};

/// The ordered list of a component's parameters. `name` is reserved (the component name).
class RUNNER_API Schema {
 public:
  ParamSpec& add(const std::string& name, ParamType type, const std::string& help);
  const ParamSpec* find(const std::string& name) const;
  const std::vector<ParamSpec>& params() const { return params_; }
  std::vector<std::string> names() const;

 private:
  std::vector<ParamSpec> params_;
};

/// A validated component block with every default filled in. Cheap to copy.
class RUNNER_API Params {
 public:
  Params() = default;
  Params(YAML::Node values, std::string path) : values_(std::move(values)), path_(std::move(path)) {}

  /// Typed value of a declared parameter; throws ParamError if absent or not convertible.
  template <class T>
  T get(const std::string& key) const {
    YAML::Node n = node(key);
    try {
      return n.as<T>();
    } catch (const YAML::Exception&) {
      throw ParamError(key, "cannot be read as the expected type");
    }
  }
  /// The raw YAML value (lists, maps). Throws ParamError if the key is absent.
  YAML::Node node(const std::string& key) const;
  bool has(const std::string& key) const { return values_[key].IsDefined(); }
  bool is_null(const std::string& key) const { return !has(key) || values_[key].IsNull(); }
  /// Config path of the block, e.g. "optimizer".
  const std::string& path() const { return path_; }
  const YAML::Node& values() const { return values_; }

 private:
  YAML::Node values_;
  std::string path_;
};

}  // namespace runner
