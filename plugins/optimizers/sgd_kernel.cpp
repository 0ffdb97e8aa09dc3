// torch::optim::SGD's step for one float32 parameter is a chain of ATen operators:
//   d = g.add(p, wd); buf.mul_(m).add_(d, 1 - dampening) (or buf = d.clone() at the first step);
//   d = d.add(buf, m) with Nesterov, else d = buf; p.add_(d, -lr).
// ATen's CPU add with alpha computes self + alpha * other as one fused multiply-add in both its
// vector and its scalar loops (ufunc/add.h: vec::fmadd; the scalar loop is contracted), and mul_
// by a scalar rounds the product once. So each element here goes through the same roundings,
// with explicit fmaf and this file compiled with -ffp-contract=off (no other contraction), and
// the result is bit-identical to the chain, in one pass over memory instead of five.
// ATen only takes the FMA path on an AVX2 or AVX-512 CPU; the caller checks that.
#include "sgd_kernel.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>

#define RUNNER_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))

namespace runner::plugins::sgd_kernel {
namespace {

template <bool Decay, bool Momentum, bool First, bool Nesterov>
inline __attribute__((always_inline)) void body(const Coeffs& c, float* __restrict p, const float* __restrict g,
                                                float* __restrict buf, int64_t begin, int64_t end) {
  const float wd = c.weight_decay, m = c.momentum, damp = c.damp, neg_lr = c.neg_lr;  // in registers
  for (int64_t i = begin; i < end; ++i) {
    float d = g[i];
    if (Decay) d = std::fma(p[i], wd, d);
    if (Momentum) {
      float b = d;
      if (!First) {
        const float kept = buf[i] * m;  // mul_(momentum): rounded on its own
        b = std::fma(d, damp, kept);
      }
      buf[i] = b;
      d = Nesterov ? std::fma(b, m, d) : b;
    }
    p[i] = std::fma(d, neg_lr, p[i]);
  }
}

template <bool Decay, bool Momentum, bool First>
inline __attribute__((always_inline)) void nesterov_or_not(const Coeffs& c, float* p, const float* g, float* buf,
                                                           int64_t begin, int64_t end) {
  if (c.nesterov)
    body<Decay, Momentum, First, true>(c, p, g, buf, begin, end);
  else
    body<Decay, Momentum, First, false>(c, p, g, buf, begin, end);
}

RUNNER_KERNEL void step_rows(const Coeffs& c, float* p, const float* g, float* buf, int64_t begin, int64_t end) {
  const bool decay = c.weight_decay != 0;
  if (c.momentum == 0) {
    if (decay)
      body<true, false, false, false>(c, p, g, buf, begin, end);
    else
      body<false, false, false, false>(c, p, g, buf, begin, end);
  } else if (c.first) {
    if (decay)
      nesterov_or_not<true, true, true>(c, p, g, buf, begin, end);
    else
      nesterov_or_not<false, true, true>(c, p, g, buf, begin, end);
  } else {
    if (decay)
      nesterov_or_not<true, true, false>(c, p, g, buf, begin, end);
    else
      nesterov_or_not<false, true, false>(c, p, g, buf, begin, end);
  }
}

}  // namespace

void step(const Coeffs& c, float* p, const float* g, float* buf, int64_t n, int threads) {
  constexpr int64_t kGrain = 32768;
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, n / kGrain)));
  if (parts == 1) return step_rows(c, p, g, buf, 0, n);
#pragma omp parallel num_threads(parts)
  {
    const int64_t t = omp_get_thread_num(), k = omp_get_num_threads();
    step_rows(c, p, g, buf, n * t / k, n * (t + 1) / k);
  }
}

}  // namespace runner::plugins::sgd_kernel
