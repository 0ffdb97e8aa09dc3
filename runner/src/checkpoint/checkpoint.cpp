#include "checkpoint/checkpoint.hpp"

#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <regex>

#include "runner/error.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;

namespace runner::checkpoint {
namespace {

constexpr char kMagic[] = "RUNNERCKPT1\n";
constexpr char kEnd[] = "END\n";

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_u64(const std::string& in, size_t pos) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(in[pos + i])) << (8 * i);
  return v;
}
uint32_t crc(const std::string& s, size_t n) {
  uLong c = crc32(0L, Z_NULL, 0);
  for (size_t off = 0; off < n;) {  // crc32 takes uInt lengths
    const size_t chunk = std::min<size_t>(n - off, 1u << 30);
    c = crc32(c, reinterpret_cast<const Bytef*>(s.data() + off), static_cast<uInt>(chunk));
    off += chunk;
  }
  return static_cast<uint32_t>(c);
}

}  // namespace

std::string encode(const Contents& c) {
  std::string out(kMagic);
  put_u64(out, c.meta.size());
  out += c.meta;
  put_u64(out, c.tensors.size());
  out += c.tensors;
  const uint32_t sum = crc(out, out.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((sum >> (8 * i)) & 0xff));
  out += kEnd;
  return out;
}

Contents decode(const std::string& b, const std::string& what) {
  const size_t magic = sizeof(kMagic) - 1, end = sizeof(kEnd) - 1;
  if (b.size() < magic || b.compare(0, magic, kMagic) != 0) throw Error(what + ": not a runner checkpoint (bad magic)");
  if (b.size() < magic + 16 + 4 + end || b.compare(b.size() - end, end, kEnd) != 0)
    throw Error(what + ": damaged checkpoint (truncated: " + std::to_string(b.size()) + " bytes)");
  const size_t body = b.size() - 4 - end;
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= static_cast<uint32_t>(static_cast<unsigned char>(b[body + i])) << (8 * i);
  if (crc(b, body) != stored) throw Error(what + ": damaged checkpoint (checksum mismatch)");
  Contents c;
  size_t pos = magic;
  const uint64_t meta_len = get_u64(b, pos);
  pos += 8;
  if (meta_len > body - pos - 8) throw Error(what + ": damaged checkpoint (bad section length)");
  c.meta = b.substr(pos, meta_len);
  pos += meta_len;
  const uint64_t tensors_len = get_u64(b, pos);
  pos += 8;
  if (tensors_len != body - pos) throw Error(what + ": damaged checkpoint (bad section length)");
  c.tensors = b.substr(pos, tensors_len);
  return c;
}

std::string write_atomic(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the checkpoint folder: " + ec.message());
  const std::string path = dir + "/" + name;
  util::write_file_atomic(path, bytes);
  util::write_file_atomic(dir + "/latest", name + "\n");  // only once the checkpoint is complete
  return path;
}

std::vector<std::string> list(const std::string& run_dir) {
  static const std::regex name_re("checkpoint_([0-9]+)\\.ckpt");
  std::vector<std::pair<long long, std::string>> found;
  std::error_code ec;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(dir, ec)) return {};
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string fname = e.path().filename().string();
    if (std::regex_match(fname, m, name_re)) found.emplace_back(std::stoll(m[1]), e.path().string());
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

void prune(const std::string& run_dir, int keep) {
  // Leftovers of a write that was killed midway never count as checkpoints; remove them.
  std::error_code ec;
  const fs::path dir = fs::path(run_dir) / "checkpoints";
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.size() > 5 && n[0] == '.' && n.compare(n.size() - 4, 4, ".tmp") == 0) fs::remove(e.path(), ec);
  }
  auto files = list(run_dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < files.size(); ++i) {
    std::error_code ec;
    fs::remove(files[i], ec);
  }
}

}  // namespace runner::checkpoint
