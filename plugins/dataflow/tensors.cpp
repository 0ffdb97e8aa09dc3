// Named arrays from .npy or .safetensors files, for data that is already arrays: no C++.
// Each split is one .safetensors file (every tensor in it is a field) or a map of field
// name -> file (.npy, or a .safetensors file holding one tensor). Dimension 0 counts the
// samples and must agree across a split's fields; the rest is one sample's shape. Fields
// keep their dtype, except float64 (made float32, LibTorch's training type) and int32/int16
// (made int64, what class indices and token ids are). Files are read whole into memory.
#include <cstring>
#include <runner/arrays.hpp>
#include <runner/plugin.hpp>

namespace {

using Arrays = std::map<std::string, torch::Tensor>;  // field -> [N, ...]

// float64 -> float32 (LibTorch's training type), int16/int32 -> int64 (class indices, token ids).
torch::Tensor normalise(torch::Tensor t) {
  if (t.scalar_type() == torch::kFloat64) return t.to(torch::kFloat32);
  if (t.scalar_type() == torch::kInt32 || t.scalar_type() == torch::kInt16) return t.to(torch::kInt64);
  return t;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

Arrays read_file(const std::string& path, const std::string& key) {
  if (!ends_with(path, ".npy") && !ends_with(path, ".safetensors"))
    throw runner::ParamError(key, "'" + path + "': expected a .npy or .safetensors file");
  Arrays out;
  try {
    out = ends_with(path, ".npy") ? Arrays{{"", runner::read_npy(path)}} : runner::read_safetensors(path);
  } catch (const runner::Error& e) {
    throw runner::ParamError(key, e.what());
  }
  if (out.empty()) throw runner::ParamError(key, path + ": holds no tensor");
  for (auto& [name, t] : out) t = normalise(t);
  return out;
}

// `key`: a .safetensors file (its tensors are the fields), or {field: file, ...}.
Arrays read_split(const runner::Params& p, const std::string& key) {
  const YAML::Node n = p.node(key);
  Arrays out;
  if (n.IsScalar()) {
    out = read_file(n.Scalar(), key);
    if (out.count(""))
      throw runner::ParamError(key,
                               "a .npy file holds one array: name the fields, e.g. "
                               "{input: x.npy, target: y.npy}");
  } else if (n.IsMap()) {
    for (const auto& kv : n) {
      const std::string field = kv.first.as<std::string>(), sub = key + "." + field;
      Arrays one = read_file(kv.second.as<std::string>(), sub);
      if (one.size() != 1)
        throw runner::ParamError(
            sub, "the file holds " + std::to_string(one.size()) + " tensors; a field's file must hold one");
      out[field] = one.begin()->second;
    }
  } else {
    throw runner::ParamError(key, "expected a .safetensors file or a map of field name -> .npy/.safetensors file");
  }
  int64_t samples = -1;
  for (const auto& [field, t] : out) {
    if (t.dim() < 1) throw runner::ParamError(key, "field '" + field + "' is a scalar: dimension 0 must count samples");
    if (samples >= 0 && t.size(0) != samples)
      throw runner::ParamError(key, "field '" + field + "' has " + std::to_string(t.size(0)) + " samples, '" +
                                        out.begin()->first + "' " + std::to_string(samples));
    samples = t.size(0);
  }
  if (samples < 1) throw runner::ParamError(key, "holds no samples");
  return out;
}

class ArrayDataset final : public runner::Dataset {
 public:
  explicit ArrayDataset(Arrays arrays) : arrays_(std::move(arrays)) {
    for (auto& [name, t] : arrays_) {
      t = t.contiguous();
      const auto dims = t.sizes().vec();
      fields_.push_back({name, t.scalar_type(), std::vector<int64_t>(dims.begin() + 1, dims.end()), {}});
      row_bytes_.push_back(t.numel() / t.size(0) * static_cast<int64_t>(t.element_size()));
    }
  }
  int64_t size() const override { return arrays_.begin()->second.size(0); }
  runner::Fields fields() const override { return fields_; }
  void get(int64_t index, const runner::Sample& out, runner::Rng&) const override {
    size_t i = 0;
    for (const auto& [name, t] : arrays_) {
      std::memcpy(out.bytes(name), static_cast<const char*>(t.data_ptr()) + index * row_bytes_[i],
                  static_cast<size_t>(row_bytes_[i]));
      ++i;
    }
  }

 private:
  Arrays arrays_;
  runner::Fields fields_;
  std::vector<int64_t> row_bytes_;
};

runner::Schema schema() {
  runner::Schema s;
  s.add("train", runner::ParamType::Any, "a .safetensors file, or {field: .npy/.safetensors file, ...}").required();
  s.add("val", runner::ParamType::Any, "the validation split, in the same form").required();
  s.add("num_classes", runner::ParamType::Int, "classes of 'target' (0: its largest value + 1 in train, if integer)")
      .def(0)
      .min(0);
  runner::add_loader_params(s, 64);
  return s;
}

std::string describe(const Arrays& a) {
  std::string s;
  for (const auto& [name, t] : a) {
    std::string shape;
    for (int64_t i = 1; i < t.dim(); ++i) shape += (shape.empty() ? "" : "x") + std::to_string(t.size(i));
    s += (s.empty() ? "" : ", ") + name + " " + c10::toString(t.scalar_type()) + (shape.empty() ? "" : " " + shape);
  }
  return s;
}

runner::Dataflow make(const runner::Params& p, const runner::DataflowContext&) {
  Arrays train = read_split(p, "train"), val = read_split(p, "val");
  for (const auto& [name, t] : train) {
    auto it = val.find(name);
    if (it == val.end()) throw runner::ParamError("val", "has no field '" + name + "', which train has");
    if (it->second.sizes().slice(1) != t.sizes().slice(1) || it->second.scalar_type() != t.scalar_type())
      throw runner::ParamError("val", "field '" + name + "' differs from train's in shape or dtype");
  }
  if (val.size() != train.size()) throw runner::ParamError("val", "has fields that train does not have");
  runner::Dataflow df;
  df.num_classes = p.get<int64_t>("num_classes");
  if (df.num_classes == 0 && train.count("target") && !train.at("target").is_floating_point())
    df.num_classes = train.at("target").max().item<int64_t>() + 1;
  df.description = "tensors: train " + std::to_string(train.begin()->second.size(0)) + " samples, val " +
                   std::to_string(val.begin()->second.size(0)) + " (" + describe(train) + ")";
  df.train = std::make_shared<ArrayDataset>(std::move(train));
  df.val = std::make_shared<ArrayDataset>(std::move(val));
  runner::read_loader_params(p, df);
  return df;
}

}  // namespace

RUNNER_REGISTER_DATAFLOW("tensors", "named arrays from .npy or .safetensors files (any task, no C++)", schema, make)
