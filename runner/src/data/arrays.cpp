#include "runner/arrays.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <sstream>

#include "runner/error.hpp"

namespace runner {
namespace {

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot be opened");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const std::string& path, const std::string& head, const std::vector<torch::Tensor>& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << head;
  for (const auto& t : data)
    out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!out) throw Error(path + ": cannot be written");
}

torch::Tensor from_bytes(const char* data, size_t bytes, const std::vector<int64_t>& shape, torch::Dtype dtype,
                         const std::string& what) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  const size_t need = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (need != bytes)
    throw Error(what + ": " + std::to_string(bytes) + " bytes of data, the shape needs " + std::to_string(need));
  torch::Tensor t = torch::empty(shape, torch::dtype(dtype));
  std::memcpy(t.data_ptr(), data, bytes);
  return t;
}

// (npy descr, safetensors dtype, torch dtype)
struct DtypeName {
  const char* npy;
  const char* st;
  torch::Dtype dtype;
};
const DtypeName kDtypes[] = {{"<f4", "F32", torch::kFloat32}, {"<f8", "F64", torch::kFloat64},
                             {"<f2", "F16", torch::kFloat16}, {"", "BF16", torch::kBFloat16},
                             {"<i8", "I64", torch::kInt64},   {"<i4", "I32", torch::kInt32},
                             {"<i2", "I16", torch::kInt16},   {"|i1", "I8", torch::kInt8},
                             {"|u1", "U8", torch::kUInt8},    {"|b1", "BOOL", torch::kBool}};

torch::Dtype dtype_of(const std::string& name, bool npy, const std::string& path) {
  for (const auto& d : kDtypes)
    if (name == (npy ? d.npy : d.st) && !name.empty()) return d.dtype;
  throw Error(path + ": dtype '" + name +
              "' is not supported (little-endian float16/32/64, bfloat16, int8/16/32/64, uint8, bool)");
}

std::string name_of(torch::Dtype dtype, bool npy, const std::string& path) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype && *(npy ? d.npy : d.st)) return npy ? d.npy : d.st;
  throw Error(path + ": cannot write dtype " + std::string(c10::toString(dtype)));
}

uint64_t little_endian(const std::string& b, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(b[at + i])) << (8 * i);
  return v;
}

}  // namespace

torch::Tensor read_npy(const std::string& path) {
  const std::string b = read_bytes(path);
  if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) throw Error(path + ": not a .npy file");
  const size_t len_bytes = b[6] == 1 ? 2 : 4, start = 8 + len_bytes;
  const size_t header_len = static_cast<size_t>(little_endian(b, 8, len_bytes));
  if (start + header_len > b.size()) throw Error(path + ": truncated .npy header");
  const std::string h = b.substr(start, header_len);
  auto value_of = [&](const std::string& name) {
    const size_t k = h.find("'" + name + "'");
    if (k == std::string::npos) throw Error(path + ": .npy header has no '" + name + "'");
    return h.substr(h.find(':', k) + 1);
  };
  std::string descr = h.substr(h.find("'descr'") + 7);
  descr = descr.substr(descr.find('\'') + 1);
  descr = descr.substr(0, descr.find('\''));
  const size_t fo = h.find("'fortran_order'");
  if (fo != std::string::npos && h.compare(h.find(':', fo) + 1, 5, " True") == 0)
    throw Error(path + ": Fortran-ordered arrays are not supported (save a C-contiguous array)");
  std::string dims = value_of("shape");
  dims = dims.substr(dims.find('(') + 1, dims.find(')') - dims.find('(') - 1);
  std::vector<int64_t> shape;
  std::stringstream ss(dims);
  for (std::string d; std::getline(ss, d, ',');)
    if (d.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoll(d));
  return from_bytes(b.data() + start + header_len, b.size() - start - header_len, shape, dtype_of(descr, true, path),
                    path);
}

void write_npy(const std::string& path, const torch::Tensor& t) {
  const torch::Tensor c = t.detach().cpu().contiguous();
  std::string dims;
  for (int64_t d : c.sizes()) dims += std::to_string(d) + ", ";
  std::string header =
      "{'descr': '" + name_of(c.scalar_type(), true, path) + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  header.resize(((header.size() + 11) / 64 + 1) * 64 - 11, ' ');  // magic + header: a multiple of 64 bytes
  header += '\n';
  std::string head = "\x93NUMPY";
  head += '\x01';
  head += '\x00';
  head += static_cast<char>(header.size() & 0xFF);
  head += static_cast<char>(header.size() >> 8);
  write_bytes(path, head + header, {c});
}

std::map<std::string, torch::Tensor> read_safetensors(const std::string& path) {
  const std::string b = read_bytes(path);
  const uint64_t n = b.size() >= 8 ? little_endian(b, 0, 8) : 0;
  if (b.size() < 8 || n > b.size() - 8) throw Error(path + ": not a .safetensors file");
  std::map<std::string, torch::Tensor> out;
  try {
    const nlohmann::json header = nlohmann::json::parse(b.substr(8, n));
    const char* data = b.data() + 8 + n;
    const size_t data_bytes = b.size() - 8 - n;
    for (const auto& [name, spec] : header.items()) {
      if (name == "__metadata__") continue;
      const auto offsets = spec.at("data_offsets").get<std::vector<size_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_bytes)
        throw Error(path + ": tensor '" + name + "' has data_offsets outside the file");
      out[name] = from_bytes(data + offsets[0], offsets[1] - offsets[0], spec.at("shape").get<std::vector<int64_t>>(),
                             dtype_of(spec.at("dtype").get<std::string>(), false, path), path + ": " + name);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": bad .safetensors header: " + e.what());
  }
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<torch::Tensor> data;
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    data.push_back(t.detach().cpu().contiguous());
    const size_t bytes = data.back().nbytes();
    header[name] = {{"dtype", name_of(data.back().scalar_type(), false, path)},
                    {"shape", data.back().sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.resize((json.size() + 7) / 8 * 8, ' ');  // the data starts 8-byte aligned, as the reference writer pads
  std::string head(8, '\0');
  for (size_t i = 0; i < 8; ++i) head[i] = static_cast<char>((json.size() >> (8 * i)) & 0xFF);
  write_bytes(path, head + json, data);
}

}  // namespace runner
