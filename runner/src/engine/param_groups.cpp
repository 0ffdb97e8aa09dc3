#include "engine/param_groups.hpp"

#include <fnmatch.h>

#include <algorithm>
#include <unordered_set>

#include "runner/error.hpp"
#include "util/strings.hpp"
#include "util/parameters.hpp"

namespace runner {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Names of the parameters owned directly by normalisation layers.
std::unordered_set<std::string> norm_parameter_names(const torch::nn::Module& model) {
  std::unordered_set<std::string> out;
  if (model.name().find("Norm") != std::string::npos)  // the model itself (it may not be in a shared_ptr)
    for (const auto& p : model.named_parameters(/*recurse=*/false)) out.insert(p.key());
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (item.value()->name().find("Norm") == std::string::npos) continue;
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false))
      out.insert(item.key().empty() ? p.key() : item.key() + "." + p.key());
  }
  return out;
}

bool matches(const std::string& rule, const std::string& name, const torch::Tensor& p,
             const std::unordered_set<std::string>& norms) {
  if (rule == "bias") return ends_with(name, "bias");
  if (rule == "norm") return norms.count(name) > 0;
  if (rule == "1d") return p.dim() < 2;
  if (rule.find_first_of("*?[") != std::string::npos) return fnmatch(rule.c_str(), name.c_str(), 0) == 0;
  return name == rule || ends_with(name, "." + rule);
}

template <class Options>
bool zero_decay_as(torch::optim::OptimizerOptions& o) {
  auto* typed = dynamic_cast<Options*>(&o);
  if (typed) typed->weight_decay(0);
  return typed != nullptr;
}

bool zero_weight_decay(torch::optim::OptimizerOptions& o) {
  using namespace torch::optim;
  return zero_decay_as<SGDOptions>(o) || zero_decay_as<AdamWOptions>(o) || zero_decay_as<AdamOptions>(o) ||
         zero_decay_as<RMSpropOptions>(o) || zero_decay_as<AdagradOptions>(o);
}

int64_t values_in(const std::vector<torch::Tensor>& ts) {
  int64_t n = 0;
  for (const auto& t : ts) n += t.numel();
  return n;
}

}  // namespace

std::vector<torch::Tensor> select_no_decay(const torch::nn::Module& model, const std::vector<NoDecayRule>& rules,
                                           const std::string& model_name) {
  const auto norms = norm_parameter_names(model);
  const auto named = unique_named_parameters(model);  // tied weights once
  std::vector<std::string> names;
  for (const auto& p : named) names.push_back(p.first);
  std::vector<bool> chosen(named.size(), false);
  for (size_t r = 0; r < rules.size(); ++r) {
    bool any = false;
    for (size_t i = 0; i < named.size(); ++i) {
      if (!named[i].second.requires_grad() || !matches(rules[r].text, names[i], named[i].second, norms)) continue;
      chosen[i] = any = true;
    }
    if (any) continue;
    std::vector<std::string> candidates = {"bias", "norm", "1d"};
    candidates.insert(candidates.end(), names.begin(), names.end());
    const std::string where = rules[r].node ? rules[r].node->loc.str() + ": " : std::string();
    throw ConfigError(where + "optimizer.no_decay[" + std::to_string(r) + "]: '" + rules[r].text +
                      "' selects no trainable parameter of model '" + model_name + "'" +
                      did_you_mean(rules[r].text, candidates) +
                      " (expected bias, norm, 1d, a parameter name such as '" +
                      (names.empty() ? std::string("fc.weight") : names.back()) + "' or a glob such as '*.bias')");
  }
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < named.size(); ++i)
    if (chosen[i]) out.push_back(named[i].second);
  return out;
}

std::string apply_no_decay(torch::optim::Optimizer& optimizer, const std::vector<torch::Tensor>& chosen,
                           const std::string& where) {
  auto& groups = optimizer.param_groups();
  if (groups.size() != 1)
    throw ConfigError(where + ": optimizer.no_decay: the optimizer made " + std::to_string(groups.size()) +
                      " parameter groups; no_decay needs the one group of all parameters");
  std::unordered_set<const void*> picked;
  for (const auto& t : chosen) picked.insert(t.unsafeGetTensorImpl());
  std::vector<torch::Tensor> keep, moved;
  for (const auto& p : groups[0].params()) (picked.count(p.unsafeGetTensorImpl()) ? moved : keep).push_back(p);
  auto options = groups[0].options().clone();
  if (!zero_weight_decay(*options))
    throw ConfigError(where +
                      ": optimizer.no_decay: this optimizer's options have no weight decay runner can set "
                      "(it knows sgd, adam, adamw, rmsprop and adagrad options); remove no_decay");
  if (keep.empty()) {
    groups[0].set_options(std::move(options));
  } else {
    groups[0].params() = keep;
    optimizer.add_param_group(torch::optim::OptimizerParamGroup(moved, std::move(options)));
  }
  return std::to_string(moved.size()) + " parameter tensors (" + std::to_string(values_in(moved)) +
         " values) without weight decay, " + std::to_string(keep.size()) + " (" + std::to_string(values_in(keep)) +
         ") with";
}

}  // namespace runner
