#include <algorithm>
// Out-of-line parts of the plugin SDK (runner/include/runner/*.hpp): key functions of
// exported classes live here so their type info is unique across plugin libraries.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "runner/plugin.hpp"

namespace runner {

const char* version() { return RUNNER_VERSION; }

Error::~Error() = default;
ConfigError::~ConfigError() = default;
SampleError::~SampleError() = default;
ParamError::ParamError(std::string key, const std::string& message) : Error(message), key_(std::move(key)) {}
ParamError::~ParamError() = default;

Dataset::~Dataset() = default;
Model::~Model() = default;
Criterion::~Criterion() = default;
Scheduler::~Scheduler() = default;
Metric::~Metric() = default;
Handler::~Handler() = default;

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::Bool: return "bool";
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::String: return "string";
    case ParamType::List: return "list";
    case ParamType::Map: return "map";
    case ParamType::Any: return "any";
  }
  return "?";
}

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::Dataflow: return "dataflow";
    case Kind::Model: return "model";
    case Kind::Optimizer: return "optimizer";
    case Kind::Criterion: return "criterion";
    case Kind::Scheduler: return "scheduler";
    case Kind::Metric: return "metric";
    case Kind::Handler: return "handler";
  }
  return "?";
}

std::string format_number(double v) {
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  // Keep it a float for YAML readers: "1" -> "1.0", "1e-05" stays.
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

ParamSpec& ParamSpec::def(double value) {
  default_value = YAML::Node(format_number(value));
  return *this;
}

ParamSpec& ParamSpec::def(const std::vector<double>& values) {
  default_value = YAML::Node(YAML::NodeType::Sequence);
  for (double v : values) default_value.push_back(format_number(v));
  return *this;
}

ParamSpec& Schema::add(const std::string& name, ParamType type, const std::string& help) {
  ParamSpec spec;
  spec.name = name;
  spec.type = type;
  spec.help = help;
  params_.push_back(std::move(spec));
  return params_.back();
}

const ParamSpec* Schema::find(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

std::vector<std::string> Schema::names() const {
  std::vector<std::string> out;
  for (const auto& p : params_) out.push_back(p.name);
  return out;
}

YAML::Node Params::node(const std::string& key) const {
  YAML::Node n = values_[key];
  if (!n.IsDefined()) throw ParamError(key, "is not set");
  return n;
}

void add_loader_params(Schema& s, int64_t default_batch_size) {
  s.add("batch_size", ParamType::Int, "global training batch, split across ranks").def(default_batch_size).min(1);
  s.add("val_batch_size", ParamType::Int, "global evaluation batch (0: 4x batch_size)").def(0).min(0);
  s.add("num_workers", ParamType::Int, "loader threads per rank (0: load on the training thread)")
      .def(1)
      .min(0)
      .max(64);
  s.add("prefetch", ParamType::Int, "batches in flight per loader thread").def(2).min(1).max(64);
  s.add("drop_last", ParamType::Bool, "drop the last partial training batch").def(false);
}

void read_loader_params(const Params& p, Dataflow& df) {
  df.batch_size = p.get<int64_t>("batch_size");
  df.val_batch_size = p.get<int64_t>("val_batch_size");
  if (df.val_batch_size == 0) df.val_batch_size = 4 * df.batch_size;
  df.num_workers = p.get<int>("num_workers");
  df.prefetch = p.get<int>("prefetch");
  df.drop_last = p.get<bool>("drop_last");
}

namespace {
class Subset final : public Dataset {
 public:
  Subset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices)
      : base_(std::move(base)), indices_(std::move(indices)) {}
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  std::vector<int64_t> sample_shape() const override { return base_->sample_shape(); }
  void get(int64_t index, float* out, int64_t* target, Rng& rng) const override {
    base_->get(indices_.at(static_cast<size_t>(index)), out, target, rng);
  }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_;
};
}  // namespace

std::shared_ptr<Dataset> random_subset(std::shared_ptr<const Dataset> dataset, int64_t n, uint64_t seed) {
  const int64_t size = dataset->size();
  std::vector<int64_t> order(static_cast<size_t>(size));
  for (int64_t i = 0; i < size; ++i) order[i] = i;
  Rng rng(splitmix64(seed ^ 0x7A1E5u));
  for (int64_t i = size - 1; i > 0; --i) std::swap(order[i], order[rng.uniform_int(0, i)]);
  order.resize(static_cast<size_t>(std::min(n, size)));
  std::sort(order.begin(), order.end());  // sequential reads
  return std::make_shared<Subset>(std::move(dataset), std::move(order));
}

int64_t to_iterations(const YAML::Node& value, int64_t iterations_per_epoch, const std::string& key) {
  const std::string text = value.IsScalar() ? value.Scalar() : std::string();
  const char* hint = "expected a number of iterations (e.g. 500) or of epochs (e.g. 2ep)";
  if (text.empty()) throw ParamError(key, hint);
  try {
    size_t used = 0;
    if (text.size() > 2 && text.compare(text.size() - 2, 2, "ep") == 0) {
      const double epochs = std::stod(text.substr(0, text.size() - 2), &used);
      if (used != text.size() - 2 || epochs < 0) throw std::invalid_argument(text);
      return static_cast<int64_t>(std::llround(epochs * static_cast<double>(iterations_per_epoch)));
    }
    const long long iters = std::stoll(text, &used);
    if (used != text.size() || iters < 0) throw std::invalid_argument(text);
    return iters;
  } catch (const std::logic_error&) {
    throw ParamError(key, std::string(hint) + ", got '" + text + "'");
  }
}

}  // namespace runner
