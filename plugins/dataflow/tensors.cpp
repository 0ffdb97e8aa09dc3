// Named arrays from .npy or .safetensors files, for data that is already arrays: no C++.
// Each split is one .safetensors file (every tensor in it is a field) or a map of field
// name -> file (.npy, or a .safetensors file holding one tensor). Dimension 0 counts the
// samples and must agree across a split's fields; the rest is one sample's shape. Fields
// keep their dtype, except float64 (made float32, LibTorch's training type) and int32/int16
// (made int64, what class indices and token ids are). Files are read whole into memory.
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <runner/plugin.hpp>
#include <sstream>

namespace {

using Arrays = std::map<std::string, torch::Tensor>;  // field -> [N, ...]

std::string read_bytes(const std::string& path, const std::string& key) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw runner::ParamError(key, path + ": cannot be opened");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// Training dtypes: float64 -> float32, int32/int16 -> int64; the rest as they are.
torch::Tensor normalise(torch::Tensor t) {
  if (t.scalar_type() == torch::kFloat64) return t.to(torch::kFloat32);
  if (t.scalar_type() == torch::kInt32 || t.scalar_type() == torch::kInt16) return t.to(torch::kInt64);
  return t;
}

torch::Tensor from_bytes(const char* data, size_t bytes, const std::vector<int64_t>& shape, torch::Dtype dtype,
                         const std::string& what) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (static_cast<size_t>(numel) * c10::elementSize(dtype) != bytes)
    throw runner::Error(what + ": " + std::to_string(bytes) + " bytes of data, the shape needs " +
                        std::to_string(static_cast<size_t>(numel) * c10::elementSize(dtype)));
  torch::Tensor t = torch::empty(shape, torch::dtype(dtype));
  std::memcpy(t.data_ptr(), data, bytes);
  return normalise(t);
}

torch::Dtype npy_dtype(const std::string& descr, const std::string& what) {
  static const std::map<std::string, torch::Dtype> known = {
      {"<f4", torch::kFloat32}, {"<f8", torch::kFloat64}, {"<f2", torch::kFloat16},
      {"<i8", torch::kInt64},   {"<i4", torch::kInt32},   {"<i2", torch::kInt16},
      {"|u1", torch::kUInt8},   {"|i1", torch::kInt8},    {"|b1", torch::kBool}};
  auto it = known.find(descr);
  if (it == known.end())
    throw runner::Error(what + ": dtype '" + descr +
                        "' is not supported (little-endian float16/32/64, int8/16/32/64, "
                        "uint8, bool)");
  return it->second;
}

// A .npy file (format versions 1-3): magic, header length, a Python dict literal, data.
torch::Tensor read_npy(const std::string& path, const std::string& key) {
  const std::string b = read_bytes(path, key);
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) throw runner::ParamError(key, path + ": not a .npy file");
  const bool v1 = b[6] == 1;
  const size_t len_bytes = v1 ? 2 : 4, start = 8 + len_bytes;
  size_t header_len = 0;
  for (size_t i = 0; i < len_bytes; ++i)
    header_len |= static_cast<size_t>(static_cast<unsigned char>(b[8 + i])) << (8 * i);
  if (start + header_len > b.size()) throw runner::ParamError(key, path + ": truncated .npy header");
  const std::string h = b.substr(start, header_len);
  auto value_of = [&](const std::string& name) {
    const size_t k = h.find("'" + name + "'");
    if (k == std::string::npos) throw runner::ParamError(key, path + ": .npy header has no '" + name + "'");
    return h.substr(h.find(':', k) + 1);
  };
  std::string descr = value_of("descr");
  descr = descr.substr(descr.find('\'') + 1);
  descr = descr.substr(0, descr.find('\''));
  if (value_of("fortran_order").find("True") < value_of("fortran_order").find(','))
    throw runner::ParamError(key, path + ": Fortran-ordered arrays are not supported (save a C-contiguous array)");
  std::string dims = value_of("shape");
  dims = dims.substr(dims.find('(') + 1, dims.find(')') - dims.find('(') - 1);
  std::vector<int64_t> shape;
  std::stringstream ss(dims);
  for (std::string d; std::getline(ss, d, ',');)
    if (d.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoll(d));
  try {
    return from_bytes(b.data() + start + header_len, b.size() - start - header_len, shape, npy_dtype(descr, path),
                      path);
  } catch (const runner::Error& e) {
    throw runner::ParamError(key, e.what());
  }
}

torch::Dtype safetensors_dtype(const std::string& d, const std::string& what) {
  static const std::map<std::string, torch::Dtype> known = {
      {"F32", torch::kFloat32}, {"F64", torch::kFloat64}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
      {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
      {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};
  auto it = known.find(d);
  if (it == known.end()) throw runner::Error(what + ": dtype '" + d + "' is not supported");
  return it->second;
}

// A .safetensors file: an 8-byte little-endian header length, a JSON header (name ->
// dtype, shape, data_offsets), then the data.
Arrays read_safetensors(const std::string& path, const std::string& key) {
  const std::string b = read_bytes(path, key);
  uint64_t n = 0;
  for (size_t i = 0; i < 8 && i < b.size(); ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(b[i])) << (8 * i);
  if (b.size() < 8 || n > b.size() - 8) throw runner::ParamError(key, path + ": not a .safetensors file");
  Arrays out;
  try {
    const nlohmann::json header = nlohmann::json::parse(b.substr(8, n));
    const char* data = b.data() + 8 + n;
    const size_t data_bytes = b.size() - 8 - n;
    for (const auto& [name, spec] : header.items()) {
      if (name == "__metadata__") continue;
      const auto offsets = spec.at("data_offsets").get<std::vector<size_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_bytes)
        throw runner::Error(path + ": tensor '" + name + "' has data_offsets outside the file");
      out[name] = from_bytes(data + offsets[0], offsets[1] - offsets[0], spec.at("shape").get<std::vector<int64_t>>(),
                             safetensors_dtype(spec.at("dtype").get<std::string>(), path), path + ": " + name);
    }
  } catch (const nlohmann::json::exception& e) {
    throw runner::ParamError(key, path + ": bad .safetensors header: " + e.what());
  } catch (const runner::ParamError&) {
    throw;
  } catch (const runner::Error& e) {
    throw runner::ParamError(key, e.what());
  }
  if (out.empty()) throw runner::ParamError(key, path + ": holds no tensor");
  return out;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

Arrays read_file(const std::string& path, const std::string& key) {
  if (ends_with(path, ".npy")) return {{"", read_npy(path, key)}};
  if (ends_with(path, ".safetensors")) return read_safetensors(path, key);
  throw runner::ParamError(key, "'" + path + "': expected a .npy or .safetensors file");
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
