#include "cli/run_weights.hpp"

#include <filesystem>
#include <set>

#include "checkpoint/checkpoint.hpp"
#include "runner/arrays.hpp"
#include "runner/error.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace runner::cli {
namespace fs = std::filesystem;

namespace {

// The best model by the run's `best:` rule (the score is in the file name), else "".
std::string best_model(const std::string& run_dir, const RunConfig& config) {
  std::string chosen;
  double chosen_score = 0;
  std::error_code ec;
  if (!fs::is_directory(run_dir + "/best", ec)) return "";
  for (const auto& e : fs::directory_iterator(run_dir + "/best", ec)) {
    const std::string name = e.path().filename().string();
    const size_t eq = name.rfind('='), dot = name.rfind(".pt");
    if (eq == std::string::npos || dot == std::string::npos || dot < eq || dot + 3 != name.size()) continue;
    const double score = std::atof(name.substr(eq + 1, dot - eq - 1).c_str());
    const bool better = config.best && !config.best->maximize() ? score < chosen_score : score > chosen_score;
    if (chosen.empty() || better) chosen = e.path().string(), chosen_score = score;
  }
  return chosen;
}

std::string shape_of(const torch::Tensor& t) {
  std::string s;
  for (int64_t d : t.sizes()) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "[" + s + "]";
}

// Strict: every parameter and buffer of the model from the file, by name and shape.
void load_state_dict(torch::nn::Module& model, const std::string& path) {
  const std::map<std::string, torch::Tensor> state = read_safetensors(path);
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  std::vector<std::string> names;
  auto load = [&](const std::string& name, torch::Tensor t) {
    names.push_back(name);
    auto it = state.find(name);
    if (it == state.end())
      throw ConfigError(path + ": has no tensor '" + name + "' (the model's is " + shape_of(t) + ")");
    if (it->second.sizes() != t.sizes())
      throw ConfigError(path + ": '" + name + "' is " + shape_of(it->second) + ", the model's is " + shape_of(t));
    t.copy_(it->second);
    used.insert(name);
  };
  for (const auto& p : model.named_parameters()) load(p.key(), p.value());
  for (const auto& b : model.named_buffers()) load(b.key(), b.value());
  for (const auto& [name, t] : state)
    if (!used.count(name))
      throw ConfigError(path + ": tensor '" + name + "' is not in the model" + did_you_mean(name, names));
}

}  // namespace

std::string weights_file(const std::string& run_dir, const std::string& which, const RunConfig& config,
                         const std::string& cmd) {
  if (which == "best") {
    const std::string best = best_model(run_dir, config);
    if (!best.empty()) return best;
  }
  if (which == "best" || which == "last") {
    const auto all = checkpoint::list(run_dir);
    if (all.empty())
      throw ConfigError(cmd + ": " + run_dir + " has no " + (which == "best" ? "best model or " : "") +
                        "checkpoint (best/*.pt, checkpoints/*.ckpt)");
    return all.back();
  }
  std::error_code ec;
  if (!fs::is_regular_file(which, ec))
    throw ConfigError(cmd + ": --checkpoint: '" + which + "' is not best, last or a file");
  return which;
}

void load_weights(torch::nn::Module& model, const std::string& path, const std::string& cmd) {
  if (path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0) {
    try {
      return load_state_dict(model, path);
    } catch (const ConfigError& e) {
      throw ConfigError(cmd + ": " + e.what());
    } catch (const Error& e) {
      throw ConfigError(cmd + ": " + e.what());
    }
  }
  const std::string bytes = util::read_file(path);
  torch::serialize::InputArchive archive;
  try {
    if (bytes.rfind("RUNNERCKPT1", 0) == 0) {
      const checkpoint::Contents c = checkpoint::decode(bytes, path);
      torch::serialize::InputArchive all;
      all.load_from(c.tensors.data(), c.tensors.size());
      all.read("model", archive);
    } else {
      archive.load_from(bytes.data(), bytes.size());
    }
    model.load(archive);
  } catch (const c10::Error& e) {
    throw ConfigError(cmd + ": " + path + ": not weights of this run's model: " + e.what_without_backtrace());
  }
}

}  // namespace runner::cli
