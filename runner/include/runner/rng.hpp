#pragma once
// Small, fast, counter-seeded random numbers for data augmentation.
// A sample's randomness is a pure function of (seed, epoch, sample index), so the
// data stream does not depend on the number of loader threads and an epoch can be
// resumed at any position without replaying earlier samples.
#include <cmath>
#include <cstdint>

namespace runner {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(splitmix64(seed)) {}
  /// The generator for one sample of one epoch.
  static Rng for_sample(uint64_t seed, uint64_t epoch, uint64_t index) {
    return Rng(splitmix64(splitmix64(seed) ^ splitmix64(epoch + 0x51ED27ull)) ^ index);
  }
  uint64_t next() { return splitmix64(state_++); }
  /// Uniform integer in [lo, hi] (inclusive).
  int64_t uniform_int(int64_t lo, int64_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(next() % span);
  }
  /// Uniform double in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool bernoulli(double p) { return uniform() < p; }
  /// Standard normal (Box-Muller; one of the pair is discarded for simplicity).
  double normal() {
    const double u1 = uniform() + 0x1.0p-54, u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

}  // namespace runner
