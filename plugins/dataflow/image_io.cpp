#include "image_io.hpp"

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>

#include <runner/error.hpp>

namespace runner::plugins::image {
namespace {

bool is_jpeg(const std::vector<uint8_t>& b) { return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }
bool is_png(const std::vector<uint8_t>& b) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  return b.size() >= 8 && std::memcmp(b.data(), sig, 8) == 0;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) { throw SampleError(path + ": " + what); }

// One decompressor per loader thread (creating one costs more than a small decode).
tjhandle jpeg_handle() {
  struct Holder {
    tjhandle h = tjInitDecompress();
    ~Holder() {
      if (h) tjDestroy(h);
    }
  };
  thread_local Holder holder;
  if (!holder.h) throw Error("libjpeg-turbo: cannot create a decompressor");
  return holder.h;
}

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path, int min_w, int min_h) {
  tjhandle tj = jpeg_handle();
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, bytes.data(), static_cast<unsigned long>(bytes.size()), &w, &h, &subsamp, &colorspace) !=
      0)
    fail(path, std::string("not a readable JPEG (") + tjGetErrorStr2(tj) + ")");
  // The smallest DCT scale that still covers the requested size.
  int n = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&n);
  int best_w = w, best_h = h;
  for (int i = 0; i < n; ++i) {
    const tjscalingfactor f = factors[i];
    if (f.num > f.denom) continue;  // only reductions
    const int sw = TJSCALED(w, f), sh = TJSCALED(h, f);
    if (sw >= min_w && sh >= min_h && sw * static_cast<int64_t>(sh) < best_w * static_cast<int64_t>(best_h))
      best_w = sw, best_h = sh;
  }
  Image img;
  img.width = best_w;
  img.height = best_h;
  img.rgb.resize(static_cast<size_t>(best_w) * best_h * 3);
  if (tjDecompress2(tj, bytes.data(), static_cast<unsigned long>(bytes.size()), img.rgb.data(), best_w, 0, best_h,
                    TJPF_RGB, 0) != 0)
    // Warnings (e.g. "Premature end of JPEG file") count too: PIL refuses truncated files.
    fail(path, std::string("corrupt JPEG (") + tjGetErrorStr2(tj) + ")");
  return img;
}

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& path) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()))
    fail(path, std::string("not a readable PNG (") + png.message + ")");
  png.format = PNG_FORMAT_RGB;  // palette, grey, 16-bit and alpha converted (alpha composited on black)
  Image img;
  img.width = static_cast<int>(png.width);
  img.height = static_cast<int>(png.height);
  img.rgb.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, nullptr, img.rgb.data(), 0, nullptr)) {
    const std::string msg = png.message;
    png_image_free(&png);
    fail(path, "corrupt PNG (" + msg + ")");
  }
  return img;
}

// PIL's resampling coefficients (ImagingResample, bilinear = triangle filter, support 1,
// widened by the downscale factor so every input pixel contributes: antialiasing).
struct Coeffs {
  std::vector<int> start, count;
  std::vector<float> weights;  ///< out_size x ksize
  int ksize = 0;
};

Coeffs coefficients(double in0, double in1, int in_size, int out_size) {
  const double scale = (in1 - in0) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.start.resize(out_size);
  c.count.resize(out_size);
  c.weights.assign(static_cast<size_t>(out_size) * c.ksize, 0.f);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    xmax = std::min(xmax, c.ksize);
    float* k = &c.weights[static_cast<size_t>(xx) * c.ksize];
    double total = 0;
    for (int x = 0; x < xmax; ++x) {
      const double t = std::abs((x + xmin - center + 0.5) * ss);
      const double w = t < 1.0 ? 1.0 - t : 0.0;
      k[x] = static_cast<float>(w);
      total += w;
    }
    if (total > 0)
      for (int x = 0; x < xmax; ++x) k[x] = static_cast<float>(k[x] / total);
    c.start[xx] = xmin;
    c.count[xx] = std::max(xmax, 0);
  }
  return c;
}

}  // namespace

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) fail(path, "cannot open");
  const std::streamoff size = in.tellg();
  std::vector<uint8_t> bytes(static_cast<size_t>(std::max<std::streamoff>(size, 0)));
  in.seekg(0);
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), size)) fail(path, "read error");
  return bytes;
}

void probe(const std::vector<uint8_t>& bytes, const std::string& path, int* width, int* height) {
  if (is_jpeg(bytes)) {
    int subsamp = 0, colorspace = 0;
    tjhandle tj = jpeg_handle();
    if (tjDecompressHeader3(tj, bytes.data(), static_cast<unsigned long>(bytes.size()), width, height, &subsamp,
                            &colorspace) != 0)
      fail(path, std::string("not a readable JPEG (") + tjGetErrorStr2(tj) + ")");
  } else if (is_png(bytes)) {
    if (bytes.size() < 24 || std::memcmp(bytes.data() + 12, "IHDR", 4) != 0) fail(path, "PNG without an IHDR header");
    auto be32 = [&](size_t at) {
      return static_cast<int>((uint32_t(bytes[at]) << 24) | (uint32_t(bytes[at + 1]) << 16) |
                              (uint32_t(bytes[at + 2]) << 8) | uint32_t(bytes[at + 3]));
    };
    *width = be32(16);
    *height = be32(20);
  } else {
    fail(path, bytes.empty() ? "empty file" : "neither a JPEG nor a PNG file (by its first bytes)");
  }
  if (*width <= 0 || *height <= 0 || *width > 65535 || *height > 65535)
    fail(path, "implausible image size " + std::to_string(*width) + "x" + std::to_string(*height));
}

Image decode(const std::vector<uint8_t>& bytes, const std::string& path, int min_width, int min_height) {
  if (is_jpeg(bytes)) return decode_jpeg(bytes, path, min_width, min_height);
  if (is_png(bytes)) return decode_png(bytes, path);
  fail(path, bytes.empty() ? "empty file" : "neither a JPEG nor a PNG file (by its first bytes)");
}

void resample_box(const Image& src, double x0, double y0, double x1, double y1, int out_w, int out_h,
                  const float mean[3], const float std[3], bool flip, float* out) {
  const Coeffs cx = coefficients(x0, x1, src.width, out_w);
  const Coeffs cy = coefficients(y0, y1, src.height, out_h);
  // Horizontal pass over the source rows the vertical pass reads.
  int row_lo = src.height, row_hi = 0;
  for (int y = 0; y < out_h; ++y) {
    row_lo = std::min(row_lo, cy.start[y]);
    row_hi = std::max(row_hi, cy.start[y] + cy.count[y]);
  }
  if (row_hi <= row_lo) row_lo = row_hi = 0;
  std::vector<float> tmp(static_cast<size_t>(row_hi - row_lo) * out_w * 3);
  for (int y = row_lo; y < row_hi; ++y) {
    const uint8_t* row = src.rgb.data() + static_cast<size_t>(y) * src.width * 3;
    float* t = tmp.data() + static_cast<size_t>(y - row_lo) * out_w * 3;
    for (int x = 0; x < out_w; ++x) {
      const float* k = &cx.weights[static_cast<size_t>(x) * cx.ksize];
      const uint8_t* p = row + static_cast<size_t>(cx.start[x]) * 3;
      float r = 0, g = 0, b = 0;
      for (int i = 0; i < cx.count[x]; ++i) {
        r += k[i] * p[3 * i];
        g += k[i] * p[3 * i + 1];
        b += k[i] * p[3 * i + 2];
      }
      t[3 * x] = r;
      t[3 * x + 1] = g;
      t[3 * x + 2] = b;
    }
  }
  // Vertical pass, normalisation, CHW layout and the optional mirror.
  const size_t plane = static_cast<size_t>(out_w) * out_h;
  float scale[3], shift[3];
  for (int c = 0; c < 3; ++c) {
    scale[c] = 1.f / (255.f * std[c]);
    shift[c] = -mean[c] / std[c];
  }
  std::vector<float> acc(static_cast<size_t>(out_w) * 3);
  for (int y = 0; y < out_h; ++y) {
    std::fill(acc.begin(), acc.end(), 0.f);
    const float* k = &cy.weights[static_cast<size_t>(y) * cy.ksize];
    for (int i = 0; i < cy.count[y]; ++i) {
      const float* t = tmp.data() + static_cast<size_t>(cy.start[y] + i - row_lo) * out_w * 3;
      const float w = k[i];
      for (int j = 0; j < out_w * 3; ++j) acc[j] += w * t[j];
    }
    for (int x = 0; x < out_w; ++x) {
      const int ox = flip ? out_w - 1 - x : x;
      for (int c = 0; c < 3; ++c) {
        // Clamp as an 8-bit pipeline would (the triangle filter never overshoots, but sums may round).
        const float v = std::min(255.f, std::max(0.f, acc[3 * x + c]));
        out[c * plane + static_cast<size_t>(y) * out_w + ox] = v * scale[c] + shift[c];
      }
    }
  }
}

}  // namespace runner::plugins::image
