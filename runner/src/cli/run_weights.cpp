#include "cli/run_weights.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "checkpoint/checkpoint.hpp"
#include "device/cuda.hpp"
#include "engine/trackers.hpp"
#include "runner/nn.hpp"
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

// The tensors of a module archive (torch::save's nested layout: one archive per submodule) under
// the model's own dotted names ("layer1.conv1.weight"), as Module::load walks it; a name the
// archive lacks is left out, for load_state to name.
void read_archive(torch::nn::Module& m, torch::serialize::InputArchive& archive, const std::string& prefix,
                  std::map<std::string, torch::Tensor>& out) {
  for (const auto& p : m.named_parameters(/*recurse=*/false)) {
    torch::Tensor t;
    if (archive.try_read(p.key(), t)) out[prefix + p.key()] = t;
  }
  for (const auto& b : m.named_buffers(/*recurse=*/false)) {
    torch::Tensor t;
    if (archive.try_read(b.key(), t, /*is_buffer=*/true)) out[prefix + b.key()] = t;
  }
  for (const auto& c : m.named_children()) {
    torch::serialize::InputArchive sub;
    if (c.value()->is_serializable() && archive.try_read(c.key(), sub))
      read_archive(*c.value(), sub, prefix + c.key() + ".", out);
  }
}

}  // namespace

device::Placement run_placement(const RunConfig& config, const std::string& flag, const std::string& cmd, bool autocast,
                                std::ostream& log) {
  static const std::vector<std::string> kinds = {"auto", "cpu", "cuda"};
  if (!flag.empty() && std::find(kinds.begin(), kinds.end(), flag) == kinds.end())
    throw ConfigError(cmd + ": --device: '" + flag + "' is not auto, cpu or cuda" + did_you_mean(flag, kinds));
  const std::string want = flag.empty() ? config.step.device : flag;
  const bool usable = device::cuda_status().available;
  const std::string why = "no CUDA device is usable here (" + device::cuda_status().why_not + ")";
  if (want == "cuda" && !usable && !flag.empty()) throw ConfigError(cmd + ": --device cuda: " + why);
  const bool on_cpu = want == "cpu" || !usable;
  if (autocast && config.step.amp == "fp16" && on_cpu)
    throw ConfigError(cmd + ": the run used amp: fp16, which needs a CUDA device, and " +
                      (want == "cpu"
                           ? "this " + cmd + " is on the CPU (" + (flag.empty() ? "device: cpu" : "--device cpu") + ")"
                           : why));
  if (want == "cuda" && !usable) log << cmd << ": the run used device: cuda but " << why << "; running on the CPU\n";
  // One process and a usable GPU when not on the CPU: place() has nothing left to refuse.
  device::Placement p = device::place(on_cpu ? "cpu" : want, 0, 1, cmd);
  if (config.step.deterministic) at::globalContext().setDeterministicAlgorithms(true, false);
  device::configure_kernels(p, config.step.deterministic, config.step.tf32);
  runner::nn::detail::set_fused_batchnorm_relu(config.step.fused_kernels);
  return p;
}

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
      return load_safetensors(model, path);
    } catch (const ConfigError& e) {
      throw ConfigError(cmd + ": " + e.what());
    } catch (const Error& e) {
      throw ConfigError(cmd + ": " + e.what());
    }
  }
  // Read on the CPU and copied into the model, whose tensors keep their device: a checkpoint's
  // optimizer state never goes to the GPU, and a file from a GPU run loads on a CPU-only machine.
  const std::string bytes = util::read_file(path);
  std::map<std::string, torch::Tensor> state;
  try {
    torch::serialize::InputArchive archive;
    if (bytes.rfind("RUNNERCKPT1", 0) == 0) {
      const checkpoint::Contents c = checkpoint::decode(bytes, path);
      torch::serialize::InputArchive all;
      all.load_from(c.tensors.data(), c.tensors.size(), torch::kCPU);
      all.read("model", archive);
    } else {
      archive.load_from(bytes.data(), bytes.size(), torch::kCPU);
    }
    read_archive(model, archive, "", state);
  } catch (const c10::Error& e) {
    throw ConfigError(cmd + ": " + path + ": not weights of this run's model: " + e.what_without_backtrace());
  }
  load_state(model, state, cmd + ": " + path);
}

}  // namespace runner::cli
