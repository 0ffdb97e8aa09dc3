#include "runner/idx.hpp"

#include <zlib.h>

#include <memory>

#include "runner/error.hpp"

namespace runner {
namespace {

struct GzCloser {
  void operator()(gzFile f) const {
    if (f) gzclose(f);
  }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

uint32_t be32(const unsigned char* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  // gzread reads plain files transparently, so one path serves `.gz` and raw IDX.
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) throw Error(path + ": cannot open IDX file (does it exist and is it readable?)");
  gzbuffer(f.get(), 1 << 20);
  auto read_exact = [&](void* dst, size_t n, const char* what) {
    const int got = gzread(f.get(), dst, static_cast<unsigned>(n));
    if (got < 0 || static_cast<size_t>(got) != n) {
      int errnum = 0;
      const char* msg = gzerror(f.get(), &errnum);
      throw Error(path + ": truncated or corrupt IDX file while reading " + what +
                  (errnum != Z_OK && msg ? std::string(" (") + msg + ")" : std::string()));
    }
  };
  unsigned char magic[4];
  read_exact(magic, 4, "the header");
  if (magic[0] != 0 || magic[1] != 0) throw Error(path + ": not an IDX file (bad magic number)");
  if (magic[2] != 0x08)
    throw Error(path + ": IDX element type 0x" + std::to_string(int(magic[2])) +
                " is not supported (expected 0x08, unsigned byte)");
  const int ndims = magic[3];
  if (ndims < 1 || ndims > 4)
    throw Error(path + ": IDX file has " + std::to_string(ndims) + " dimensions (expected 1 to 4)");
  IdxArray out;
  uint64_t total = 1;
  for (int i = 0; i < ndims; ++i) {
    unsigned char d[4];
    read_exact(d, 4, "the dimensions");
    out.dims.push_back(be32(d));
    total *= be32(d);
    if (total > (uint64_t(1) << 34)) throw Error(path + ": IDX dimensions are implausibly large");
  }
  out.data.resize(total);
  // gzread takes an unsigned count: read in chunks.
  for (uint64_t off = 0; off < total;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(total - off, 1u << 30));
    read_exact(out.data.data() + off, n, "the data");
    off += n;
  }
  unsigned char extra;
  if (gzread(f.get(), &extra, 1) > 0) throw Error(path + ": IDX file has more data than its header declares");
  return out;
}

void write_idx(const std::string& path, const IdxArray& array, bool gzip) {
  GzFile f(gzopen(path.c_str(), gzip ? "wb6" : "wbT"));
  if (!f) throw Error(path + ": cannot create file");
  std::vector<unsigned char> header = {0, 0, 0x08, static_cast<unsigned char>(array.dims.size())};
  for (int64_t d : array.dims)
    for (int shift = 24; shift >= 0; shift -= 8) header.push_back(static_cast<unsigned char>(d >> shift));
  if (gzwrite(f.get(), header.data(), static_cast<unsigned>(header.size())) != int(header.size()) ||
      (!array.data.empty() &&
       gzwrite(f.get(), array.data.data(), static_cast<unsigned>(array.data.size())) != int(array.data.size())))
    throw Error(path + ": write failed");
}

}  // namespace runner
