#pragma once
// The SGD rule of torch::optim::SGD (and torch.optim's default on the CPU) in one pass over a
// float32 parameter, its gradient and its momentum buffer, with the same rounding as the
// chain of ATen operators it replaces (sgd_kernel.cpp says how). Plain C++: no LibTorch headers.
#include <cstdint>

namespace runner::plugins::sgd_kernel {

/// The rule's constants, already as the float32 values ATen's kernels compute with.
struct Coeffs {
  float weight_decay = 0;  // 0: none
  float momentum = 0;      // 0: no momentum buffer
  float damp = 1;          // 1 - dampening
  float neg_lr = 0;        // -lr
  bool nesterov = false;
  bool first = false;  // the buffer starts as the (decayed) gradient: torch::optim's clone
};

/// Steps the n elements of p, given g (and buf, unused without momentum), on up to `threads`
/// OpenMP threads of LibTorch's runtime (one for fewer than 32,768 elements, ATen's grain).
void step(const Coeffs& c, float* p, const float* g, float* buf, int64_t n, int threads);

}  // namespace runner::plugins::sgd_kernel
