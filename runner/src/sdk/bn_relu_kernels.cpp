#include "bn_relu_kernels.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

// Each exported function is cloned for x86-64-v4 (AVX-512 with its byte/word instructions, which
// the bfloat16 conversions use), x86-64-v3 (AVX2, FMA) and the baseline.
#define RUNNER_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define RUNNER_INLINE inline __attribute__((always_inline))

namespace runner::nn::kernels {
namespace {

constexpr int64_t kBlockRows = 64;  // rows summed in float before adding into double

RUNNER_INLINE float load(const float* p, int64_t i) { return p[i]; }
RUNNER_INLINE float load(const uint16_t* p, int64_t i) {
  const uint32_t u = static_cast<uint32_t>(p[i]) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
RUNNER_INLINE void store(float* p, int64_t i, float v) { p[i] = v; }
// Round to nearest even, NaN to the quiet NaN: c10::BFloat16's conversion.
RUNNER_INLINE void store(uint16_t* p, int64_t i, float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  p[i] = static_cast<uint16_t>(v != v ? 0x7fc0u : rounded);
}

// 16 channels at a time in GCC's vector extensions: one AVX-512 register, two AVX2 ones or
// four SSE ones, whichever the clone is compiled for.
constexpr int64_t kLanes = 16;
typedef float vf __attribute__((vector_size(64)));
typedef int32_t vi __attribute__((vector_size(64)));
typedef uint32_t vu __attribute__((vector_size(64)));
typedef uint16_t vh __attribute__((vector_size(32)));

RUNNER_INLINE vf vload(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
RUNNER_INLINE vf vload(const uint16_t* p) {
  vh h;
  std::memcpy(&h, p, sizeof h);
  return reinterpret_cast<vf>(__builtin_convertvector(h, vu) << 16);
}
RUNNER_INLINE void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
RUNNER_INLINE void vstore(uint16_t* p, vf v) {
  const vu u = reinterpret_cast<vu>(v);
  const vu rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const vu nan = reinterpret_cast<vu>(v != v);
  const vh h = __builtin_convertvector((rounded & ~nan) | (0x7fc0u & nan), vh);
  std::memcpy(p, &h, sizeof h);
}
/// max(z, 0) with NaN kept, as relu.
RUNNER_INLINE vf vrelu(vf z) {
  const vf zero = {};
  return reinterpret_cast<vf>(reinterpret_cast<vi>(z) & ~(z < zero));
}
/// g where z > 0, else 0.
RUNNER_INLINE vf vmask(vf z, vf g) {
  const vf zero = {};
  return reinterpret_cast<vf>(reinterpret_cast<vi>(g) & (z > zero));
}

// Per-channel sums of two terms over rows [r0, r1), added into s1 and s2. The rows go in
// tiles of kBlockRows: for each 16-channel block the sums stay in registers over the tile's
// rows (even and odd rows in two accumulators each, so that one row's addition does not wait
// for the previous one's) and are then added into the double arrays. vterms(offset, c, t1, t2)
// gives the terms of the 16 values at `offset` (channels c..c+15), sterms the same for one value.
template <class V, class S>
RUNNER_INLINE void paired_sums(int64_t r0, int64_t r1, int64_t channels, const V& vterms, const S& sterms, double* s1,
                               double* s2) {
  const int64_t vec_end = channels / kLanes * kLanes;
  for (int64_t r = r0; r < r1; r += kBlockRows) {
    const int64_t end = std::min(r1, r + kBlockRows);
    for (int64_t c = 0; c < vec_end; c += kLanes) {
      vf a1 = {}, a2 = {}, b1 = {}, b2 = {};
      int64_t i = r;
      for (; i + 1 < end; i += 2) {
        vf t1, t2, u1, u2;
        vterms(i * channels + c, c, t1, t2);
        vterms((i + 1) * channels + c, c, u1, u2);
        a1 += t1;
        a2 += t2;
        b1 += u1;
        b2 += u2;
      }
      if (i < end) {
        vf t1, t2;
        vterms(i * channels + c, c, t1, t2);
        a1 += t1;
        a2 += t2;
      }
      a1 += b1;
      a2 += b2;
      for (int64_t l = 0; l < kLanes; ++l) {
        s1[c + l] += a1[l];
        s2[c + l] += a2[l];
      }
    }
    for (int64_t c = vec_end; c < channels; ++c) {
      float a1 = 0, a2 = 0;
      for (int64_t i = r; i < end; ++i) {
        float t1, t2;
        sterms(i * channels + c, c, t1, t2);
        a1 += t1;
        a2 += t2;
      }
      s1[c] += a1;
      s2[c] += a2;
    }
  }
}

#define RUNNER_INLINE_LAMBDA __attribute__((always_inline))

// sum(x - shift) and sum((x - shift)^2).
template <class E>
RUNNER_INLINE void shifted_sums_body(const E* x, int64_t r0, int64_t r1, int64_t channels, const float* shift,
                                     double* s1, double* s2) {
  paired_sums(
      r0, r1, channels,
      [&](int64_t o, int64_t c, vf& t1, vf& t2) RUNNER_INLINE_LAMBDA {
        t1 = vload(x + o) - vload(shift + c);
        t2 = t1 * t1;
      },
      [&](int64_t o, int64_t c, float& t1, float& t2) RUNNER_INLINE_LAMBDA {
        t1 = load(x, o) - shift[c];
        t2 = t1 * t1;
      },
      s1, s2);
}

// The loops below take their options as template arguments, so that each combination is a
// loop without branches (measured: 1.3-2.2x faster than testing the options per vector).

template <class E, bool kResidual, bool kRelu>
RUNNER_INLINE void scale_shift_body(const E* __restrict x, const E* __restrict residual, E* __restrict y, int64_t r0,
                                    int64_t r1, int64_t channels, const float* __restrict scale,
                                    const float* __restrict shift) {
  const int64_t vec_end = channels / kLanes * kLanes;
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t o = i * channels;
    for (int64_t c = 0; c < vec_end; c += kLanes) {
      vf z = vload(x + o + c) * vload(scale + c) + vload(shift + c);
      if (kResidual) z += vload(residual + o + c);
      vstore(y + o + c, kRelu ? vrelu(z) : z);
    }
  }
  if (vec_end == channels) return;
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t o = i * channels;
    for (int64_t c = vec_end; c < channels; ++c) {
      float z = load(x, o + c) * scale[c] + shift[c];
      if (kResidual) z += load(residual, o + c);
      store(y, o + c, kRelu && z < 0.0f ? 0.0f : z);  // NaN stays NaN, as relu
    }
  }
}

// Where the backward's dz comes from: read from the forward's output y (the ReLU after a
// residual add), recomputed from x (the ReLU) or dy itself (no ReLU).
enum class Mask { Output, Input, None };

// sum(dz) and sum(dz * (x - mean)), dz being dy masked as masked_grad_sums says.
template <class E, Mask kMask>
RUNNER_INLINE void masked_grad_sums_body(const E* __restrict dy, const E* __restrict x, const E* __restrict y,
                                         E* __restrict dz_out, int64_t r0, int64_t r1, int64_t channels,
                                         const float* __restrict scale, const float* __restrict shift,
                                         const float* __restrict mean, double* g1, double* g2) {
  paired_sums(
      r0, r1, channels,
      [&](int64_t o, int64_t c, vf& dz, vf& t2) RUNNER_INLINE_LAMBDA {
        const vf xv = vload(x + o);
        if (kMask == Mask::Output) {
          dz = vmask(vload(y + o), vload(dy + o));
          vstore(dz_out + o, dz);
        } else if (kMask == Mask::Input) {
          dz = vmask(xv * vload(scale + c) + vload(shift + c), vload(dy + o));
        } else {
          dz = vload(dy + o);
        }
        t2 = dz * (xv - vload(mean + c));
      },
      [&](int64_t o, int64_t c, float& dz, float& t2) RUNNER_INLINE_LAMBDA {
        const float xv = load(x, o);
        if (kMask == Mask::Output) {
          dz = load(y, o) > 0.0f ? load(dy, o) : 0.0f;
          store(dz_out, o, dz);
        } else {
          dz = kMask == Mask::None || xv * scale[c] + shift[c] > 0.0f ? load(dy, o) : 0.0f;
        }
        t2 = dz * (xv - mean[c]);
      },
      g1, g2);
}

// dx = a * dz + b * (x - mean) + c0, dz read (Mask::Output: the dz masked_grad_sums wrote) or
// recomputed from dy.
template <class E, Mask kMask>
RUNNER_INLINE void input_grad_body(const E* __restrict dy, const E* __restrict dz, const E* __restrict x,
                                   E* __restrict dx, int64_t r0, int64_t r1, int64_t channels,
                                   const float* __restrict scale, const float* __restrict shift,
                                   const float* __restrict mean, const float* __restrict a, const float* __restrict b,
                                   const float* __restrict c0) {
  const int64_t vec_end = channels / kLanes * kLanes;
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t o = i * channels;
    for (int64_t c = 0; c < vec_end; c += kLanes) {
      const vf xv = vload(x + o + c);
      const vf d = kMask == Mask::Output  ? vload(dz + o + c)
                   : kMask == Mask::Input ? vmask(xv * vload(scale + c) + vload(shift + c), vload(dy + o + c))
                                          : vload(dy + o + c);
      vstore(dx + o + c, vload(a + c) * d + vload(b + c) * (xv - vload(mean + c)) + vload(c0 + c));
    }
  }
  if (vec_end == channels) return;
  for (int64_t i = r0; i < r1; ++i) {
    const int64_t o = i * channels;
    for (int64_t c = vec_end; c < channels; ++c) {
      const float xv = load(x, o + c);
      const float d = kMask == Mask::Output                                    ? load(dz, o + c)
                      : kMask == Mask::None || xv * scale[c] + shift[c] > 0.0f ? load(dy, o + c)
                                                                               : 0.0f;
      store(dx, o + c, a[c] * d + b[c] * (xv - mean[c]) + c0[c]);
    }
  }
}

template <class E>
const E* as(const void* p) {
  return static_cast<const E*>(p);
}
template <class E>
E* as(void* p) {
  return static_cast<E*>(p);
}

Mask mask_of(const void* y, bool relu) { return y ? Mask::Output : relu ? Mask::Input : Mask::None; }

// One slice of rows, in a clone per instruction set; the options become template arguments.
RUNNER_KERNEL void shifted_sums_rows(Dtype t, const void* x, int64_t r0, int64_t r1, int64_t channels,
                                     const float* shift, double* s1, double* s2) {
  if (t == Dtype::Float32)
    shifted_sums_body(as<float>(x), r0, r1, channels, shift, s1, s2);
  else
    shifted_sums_body(as<uint16_t>(x), r0, r1, channels, shift, s1, s2);
}

template <class E>
RUNNER_INLINE void scale_shift_typed(const void* x, const void* residual, void* y, int64_t r0, int64_t r1,
                                     int64_t channels, const float* scale, const float* shift, bool relu) {
  const E* r = as<E>(residual);
  if (r && relu)
    scale_shift_body<E, true, true>(as<E>(x), r, as<E>(y), r0, r1, channels, scale, shift);
  else if (r)
    scale_shift_body<E, true, false>(as<E>(x), r, as<E>(y), r0, r1, channels, scale, shift);
  else if (relu)
    scale_shift_body<E, false, true>(as<E>(x), r, as<E>(y), r0, r1, channels, scale, shift);
  else
    scale_shift_body<E, false, false>(as<E>(x), r, as<E>(y), r0, r1, channels, scale, shift);
}

RUNNER_KERNEL void scale_shift_rows(Dtype t, const void* x, const void* residual, void* y, int64_t r0, int64_t r1,
                                    int64_t channels, const float* scale, const float* shift, bool relu) {
  if (t == Dtype::Float32)
    scale_shift_typed<float>(x, residual, y, r0, r1, channels, scale, shift, relu);
  else
    scale_shift_typed<uint16_t>(x, residual, y, r0, r1, channels, scale, shift, relu);
}

template <class E>
RUNNER_INLINE void masked_grad_sums_typed(const void* dy, const void* x, const void* y, void* dz_out, int64_t r0,
                                          int64_t r1, int64_t channels, const float* scale, const float* shift,
                                          const float* mean, bool relu, double* g1, double* g2) {
  const E *d = as<E>(dy), *xe = as<E>(x), *ye = as<E>(y);
  E* dz = as<E>(dz_out);
  switch (mask_of(y, relu)) {
    case Mask::Output:
      return masked_grad_sums_body<E, Mask::Output>(d, xe, ye, dz, r0, r1, channels, scale, shift, mean, g1, g2);
    case Mask::Input:
      return masked_grad_sums_body<E, Mask::Input>(d, xe, ye, dz, r0, r1, channels, scale, shift, mean, g1, g2);
    case Mask::None:
      return masked_grad_sums_body<E, Mask::None>(d, xe, ye, dz, r0, r1, channels, scale, shift, mean, g1, g2);
  }
}

RUNNER_KERNEL void masked_grad_sums_rows(Dtype t, const void* dy, const void* x, const void* y, void* dz_out,
                                         int64_t r0, int64_t r1, int64_t channels, const float* scale,
                                         const float* shift, const float* mean, bool relu, double* g1, double* g2) {
  if (t == Dtype::Float32)
    masked_grad_sums_typed<float>(dy, x, y, dz_out, r0, r1, channels, scale, shift, mean, relu, g1, g2);
  else
    masked_grad_sums_typed<uint16_t>(dy, x, y, dz_out, r0, r1, channels, scale, shift, mean, relu, g1, g2);
}

template <class E>
RUNNER_INLINE void input_grad_typed(const void* dy, const void* dz, const void* x, void* dx, int64_t r0, int64_t r1,
                                    int64_t channels, const float* scale, const float* shift, const float* mean,
                                    bool relu, const float* a, const float* b, const float* c0) {
  const E *d = as<E>(dy), *z = as<E>(dz), *xe = as<E>(x);
  E* out = as<E>(dx);
  switch (mask_of(dz, relu)) {
    case Mask::Output:
      return input_grad_body<E, Mask::Output>(d, z, xe, out, r0, r1, channels, scale, shift, mean, a, b, c0);
    case Mask::Input:
      return input_grad_body<E, Mask::Input>(d, z, xe, out, r0, r1, channels, scale, shift, mean, a, b, c0);
    case Mask::None:
      return input_grad_body<E, Mask::None>(d, z, xe, out, r0, r1, channels, scale, shift, mean, a, b, c0);
  }
}

RUNNER_KERNEL void input_grad_rows(Dtype t, const void* dy, const void* dz, const void* x, void* dx, int64_t r0,
                                   int64_t r1, int64_t channels, const float* scale, const float* shift,
                                   const float* mean, bool relu, const float* a, const float* b, const float* c0) {
  if (t == Dtype::Float32)
    input_grad_typed<float>(dy, dz, x, dx, r0, r1, channels, scale, shift, mean, relu, a, b, c0);
  else
    input_grad_typed<uint16_t>(dy, dz, x, dx, r0, r1, channels, scale, shift, mean, relu, a, b, c0);
}

/// Runs f(begin_row, end_row, part) on `threads` equal slices of the rows (fewer for small
/// tensors), in an OpenMP team of LibTorch's own runtime, as ATen's kernels do.
template <class F>
void for_parts(int64_t rows, int threads, const F& f) {
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, rows / kBlockRows)));
  if (parts == 1) {
    f(0, rows, 0);
    return;
  }
#pragma omp parallel num_threads(parts)
  {
    const int64_t p = omp_get_thread_num(), n = omp_get_num_threads();
    f(rows * p / n, rows * (p + 1) / n, p);
  }
}

/// Per-thread sums of `width` values, added up in thread order (the same result for the same
/// thread count).
struct Partials {
  Partials(int threads, int64_t width) : width(width), values(static_cast<size_t>(threads) * width, 0.0) {}
  double* part(int64_t p) { return values.data() + p * width; }
  void total(double* out) const {
    std::fill(out, out + width, 0.0);
    for (size_t p = 0; p < values.size() / width; ++p)
      for (int64_t i = 0; i < width; ++i) out[i] += values[p * width + i];
  }
  int64_t width;
  std::vector<double> values;
};

}  // namespace

void shifted_sums(Dtype t, const void* x, int64_t rows, int64_t channels, const float* shift, int threads,
                  double* sums) {
  Partials partial(threads, 2 * channels);
  for_parts(rows, threads, [&](int64_t r0, int64_t r1, int64_t p) {
    shifted_sums_rows(t, x, r0, r1, channels, shift, partial.part(p), partial.part(p) + channels);
  });
  partial.total(sums);
}

void scale_shift(Dtype t, const void* x, const void* residual, void* y, int64_t rows, int64_t channels,
                 const float* scale, const float* shift, bool relu, int threads) {
  for_parts(rows, threads, [&](int64_t r0, int64_t r1, int64_t) {
    scale_shift_rows(t, x, residual, y, r0, r1, channels, scale, shift, relu);
  });
}

void masked_grad_sums(Dtype t, const void* dy, const void* x, const void* y, void* dz_out, int64_t rows,
                      int64_t channels, const float* scale, const float* shift, const float* mean, bool relu,
                      int threads, double* sums) {
  Partials partial(threads, 2 * channels);
  for_parts(rows, threads, [&](int64_t r0, int64_t r1, int64_t p) {
    masked_grad_sums_rows(t, dy, x, y, dz_out, r0, r1, channels, scale, shift, mean, relu, partial.part(p),
                          partial.part(p) + channels);
  });
  partial.total(sums);
}

void input_grad(Dtype t, const void* dy, const void* dz, const void* x, void* dx, int64_t rows, int64_t channels,
                const float* scale, const float* shift, const float* mean, bool relu, const float* a, const float* b,
                const float* c, int threads) {
  for_parts(rows, threads, [&](int64_t r0, int64_t r1, int64_t) {
    input_grad_rows(t, dy, dz, x, dx, r0, r1, channels, scale, shift, mean, relu, a, b, c);
  });
}

}  // namespace runner::nn::kernels
