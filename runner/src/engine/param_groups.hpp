#pragma once
// `optimizer.no_decay`: parameters stepped without weight decay (biases, normalisation
// scales and shifts, or any by name). The optimizer plugin builds its one parameter group;
// the host then moves the chosen parameters into a second group whose weight decay is 0,
// so every optimizer whose options LibTorch defines (sgd, adam, adamw, rmsprop, adagrad)
// gets it without knowing about it.
#include <string>
#include <vector>

#include <torch/torch.h>

#include "config/tree.hpp"

namespace runner {

/// The rules a config can give: kinds, exact names (or a trailing part of a name) and globs.
struct NoDecayRule {
  std::string text;
  const config::Node* node = nullptr;  ///< for errors: where the rule was written
};

/// The trainable parameters of `model` that `rules` select, in the model's order. Each rule
/// must select at least one parameter (ConfigError naming the rule's location otherwise):
///  - `bias`: parameters whose name ends in "bias";
///  - `norm`: parameters of normalisation layers (modules whose type name contains "Norm");
///  - `1d`: parameters with fewer than 2 dimensions (biases, norm scales and shifts);
///  - a name (`fc.weight`, or its trailing part after a dot) or a glob (`layer1.*.weight`).
std::vector<torch::Tensor> select_no_decay(const torch::nn::Module& model, const std::vector<NoDecayRule>& rules,
                                           const std::string& model_name);

/// Moves `chosen` out of the optimizer's first group into a new group with weight decay 0
/// (or zeroes the first group's decay when it holds nothing else). Returns a one-line summary.
/// Throws ConfigError (at `where`) when the options type has no weight decay runner knows.
std::string apply_no_decay(torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& chosen,
                           const std::string& where);

}  // namespace runner
