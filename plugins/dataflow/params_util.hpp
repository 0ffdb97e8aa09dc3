#pragma once
// Reading the list parameters the image dataflows share.
#include <runner/params.hpp>

#include <array>
#include <string>
#include <vector>

namespace runner::plugins {

/// `key` as exactly `n` numbers; otherwise ParamError "expected <what>".
inline std::vector<double> number_list(const Params& p, const std::string& key, size_t n, const std::string& what) {
  std::vector<double> v;
  try {
    v = p.node(key).as<std::vector<double>>();
  } catch (const YAML::Exception&) {
    v.clear();
  }
  if (v.size() != n) throw ParamError(key, "expected " + what);
  return v;
}

/// Per-channel `mean` and `std` of an RGB dataflow (std > 0), pixel scale 0..1.
struct Normalisation {
  std::array<float, 3> mean{}, std{};
};
inline Normalisation read_normalisation(const Params& p) {
  const auto mean = number_list(p, "mean", 3, "3 numbers (red, green, blue)");
  const auto std = number_list(p, "std", 3, "3 numbers (red, green, blue)");
  Normalisation n;
  for (int c = 0; c < 3; ++c) {
    if (!(std[c] > 0)) throw ParamError("std", "values must be > 0");
    n.mean[c] = static_cast<float>(mean[c]);
    n.std[c] = static_cast<float>(std[c]);
  }
  return n;
}

}  // namespace runner::plugins
