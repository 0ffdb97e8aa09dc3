#pragma once
// A module's parameters, each once. LibTorch's parameters() lists a tensor registered
// under two names (tied weights: a language model's token embedding and its output layer)
// twice; whatever steps, all-reduces, averages, converts or counts parameters uses these.
#include <torch/torch.h>

#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

namespace runner {

/// (name, parameter) pairs in registration order; a shared tensor under its first name.
inline std::vector<std::pair<std::string, torch::Tensor>> unique_named_parameters(const torch::nn::Module& module) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::unordered_set<const void*> seen;
  for (const auto& p : module.named_parameters())
    if (seen.insert(p.value().unsafeGetTensorImpl()).second) out.emplace_back(p.key(), p.value());
  return out;
}

inline std::vector<torch::Tensor> unique_parameters(const torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  for (auto& [name, p] : unique_named_parameters(module)) out.push_back(p);
  return out;
}

}  // namespace runner
