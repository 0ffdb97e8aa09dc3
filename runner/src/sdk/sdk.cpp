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
CapturableOptimizer::~CapturableOptimizer() = default;
Metric::~Metric() = default;
Handler::~Handler() = default;

namespace {
std::string names_of(const TensorDict& dict) {
  std::string s;
  for (const auto& [k, v] : dict) s += (s.empty() ? "" : ", ") + k;
  return s.empty() ? "none" : s;
}
}  // namespace

const torch::Tensor& at(const TensorDict& dict, const std::string& name, const std::string& who) {
  auto it = dict.find(name);
  if (it == dict.end())
    throw Error(who + " needs '" + name + "', which is not there (there are: " + names_of(dict) + ")");
  return it->second;
}

void* Sample::raw(const std::string& name, torch::Dtype dtype) const {
  for (size_t i = 0; i < fields_->size(); ++i) {
    const Field& f = (*fields_)[i];
    if (f.name != name) continue;
    if (f.dtype != dtype)
      throw Error("sample field '" + name + "' is " + std::string(c10::toString(f.dtype)) + ", not " +
                  c10::toString(dtype));
    return data_[i];
  }
  std::string known;
  for (const Field& f : *fields_) known += (known.empty() ? "" : ", ") + f.name;
  throw Error("sample has no field '" + name + "' (its fields: " + known + ")");
}

void* Sample::bytes(const std::string& name) const {
  for (const Field& f : *fields_)
    if (f.name == name) return raw(name, f.dtype);
  return raw(name, torch::kFloat32);  // throws: no such field
}

torch::Tensor Sample::tensor(const std::string& name) const {
  for (const Field& f : *fields_)
    if (f.name == name) return torch::from_blob(raw(name, f.dtype), f.shape, torch::dtype(f.dtype));
  raw(name, torch::kFloat32);  // throws: no such field
  return {};
}

// The classification adapter: "input" float32 of sample_shape(), "target" an int64 class.
Fields Dataset::fields() const {
  return {{"input", torch::kFloat32, sample_shape(), {}}, {"target", torch::kInt64, {}, {}}};
}

void Dataset::get(int64_t index, const Sample& out, Rng& rng) const {
  get(index, out.data<float>("input"), out.data<int64_t>("target"), rng);
}

std::vector<int64_t> Dataset::sample_shape() const {
  throw Error(
      "the dataset declares no fields: override fields() and get(index, const Sample&, Rng&), or "
      "sample_shape() and get(index, float*, int64_t*, Rng&) for classification");
}

void Dataset::get(int64_t, float*, int64_t*, Rng&) const {
  throw Error("the dataset declares its own fields() but does not override get(index, const Sample&, Rng&)");
}

TensorDict Model::forward_batch(const TensorDict& batch) {
  return {{"logits", forward(at(batch, "input", "the model"))}};
}

torch::Tensor Model::forward(torch::Tensor) {
  throw Error("the model overrides neither forward(x) nor forward_batch(batch)");
}

torch::Tensor Criterion::loss(const TensorDict& outputs, const TensorDict& batch) {
  return (*this)(at(outputs, "logits", "the criterion (of the model's outputs)"),
                 at(batch, "target", "the criterion (of the batch's fields)"));
}

torch::Tensor Criterion::operator()(const torch::Tensor&, const torch::Tensor&) {
  throw Error("the criterion overrides neither operator()(logits, targets) nor loss(outputs, batch)");
}

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
  Fields fields() const override { return base_->fields(); }
  void get(int64_t index, const Sample& out, Rng& rng) const override {
    base_->get(indices_.at(static_cast<size_t>(index)), out, rng);
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
