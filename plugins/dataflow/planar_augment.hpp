#pragma once
// The small-image augmentation of the CIFAR/MNIST recipes, on 8-bit planar images
// (C planes of H x W): pad by `pad` + random crop of the original size (torchvision's
// RandomCrop(size, padding)), random horizontal flip, then per-channel normalisation.
// Randomness is drawn in a fixed order (row offset, column offset, flip) from the
// sample's Rng.
#include <runner/rng.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>

namespace runner::plugins {

struct PlanarAugment {
  int pad = 0;           ///< 0: no crop
  bool reflect = false;  ///< padding by reflection instead of the constant `fill`
  uint8_t fill = 0;      ///< pixel value of constant padding
  bool hflip = false;
  /// Normalised value of each byte per channel: (v / 255 - mean) / std.
  std::array<std::array<float, 256>, 3> lut{};

  void set_normalisation(int channels, const float* mean, const float* std) {
    for (int c = 0; c < channels; ++c)
      for (int v = 0; v < 256; ++v) lut[c][v] = (v / 255.0f - mean[c]) / std[c];
  }

  void apply(const uint8_t* img, int channels, int64_t h, int64_t w, Rng& rng, float* out) const {
    int64_t dy = 0, dx = 0;
    if (pad > 0) {
      dy = rng.uniform_int(-pad, pad);
      dx = rng.uniform_int(-pad, pad);
    }
    const bool flip = hflip && rng.bernoulli(0.5);
    if (!reflect) return constant_padded(img, channels, h, w, dy, dx, flip, out);
    // Source coordinate of a (possibly padded) position, or -1 for constant padding.
    auto source = [&](int64_t s, int64_t n) -> int64_t {
      if (s >= 0 && s < n) return s;
      if (!reflect || n < 2) return -1;
      s = s < 0 ? -s : 2 * n - 2 - s;
      return s >= 0 && s < n ? s : -1;
    };
    for (int c = 0; c < channels; ++c) {
      const float* l = lut[c].data();
      const uint8_t* plane = img + c * h * w;
      float* o = out + c * h * w;
      for (int64_t y = 0; y < h; ++y) {
        const int64_t sy = source(y + dy, h);
        float* row = o + y * w;
        if (sy < 0) {
          for (int64_t x = 0; x < w; ++x) row[x] = l[fill];
          continue;
        }
        const uint8_t* src = plane + sy * w;
        if (dx == 0 && !flip) {  // the common case without a shift
          for (int64_t x = 0; x < w; ++x) row[x] = l[src[x]];
          continue;
        }
        for (int64_t x = 0; x < w; ++x) {
          const int64_t sx = source((flip ? w - 1 - x : x) + dx, w);
          row[x] = sx < 0 ? l[fill] : l[src[sx]];
        }
      }
    }
  }

 private:
  // The same with constant padding, a row at a time: output columns [x0, x1) read source
  // columns x + dx (or w - 1 - x + dx when flipped), the rest is `fill` (3.4x the
  // per-pixel form above: runner_loader_bench).
  void constant_padded(const uint8_t* img, int channels, int64_t h, int64_t w, int64_t dy, int64_t dx, bool flip,
                       float* out) const {
    const int64_t x0 = std::max<int64_t>(0, flip ? dx : -dx), x1 = std::min(w, flip ? w + dx : w - dx);
    for (int c = 0; c < channels; ++c) {
      const float* l = lut[c].data();
      const float pad_value = l[fill];
      for (int64_t y = 0; y < h; ++y) {
        float* row = out + (c * h + y) * w;
        const int64_t sy = y + dy;
        if (sy < 0 || sy >= h || x0 >= x1) {
          std::fill(row, row + w, pad_value);
          continue;
        }
        const uint8_t* src = img + (c * h + sy) * w;
        std::fill(row, row + x0, pad_value);
        if (flip) {
          const int64_t last = w - 1 + dx;  // source column of output column 0
          for (int64_t x = x0; x < x1; ++x) row[x] = l[src[last - x]];
        } else {
          for (int64_t x = x0; x < x1; ++x) row[x] = l[src[x + dx]];
        }
        std::fill(row + x1, row + w, pad_value);
      }
    }
  }
};

}  // namespace runner::plugins
