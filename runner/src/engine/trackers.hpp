#pragma once
// Decisions taken on validation scores: keeping the best K models (`best:`) and early
// stopping (`early_stopping:`). Scores are all-reduced metrics, so every rank takes
// the same decision; only rank 0 writes model files. Both save their state in
// checkpoints, so a resumed run decides as the uninterrupted one would.
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace runner {

/// Writes `model`'s parameters and buffers as a LibTorch archive (atomically): the format of
/// best models and of ema_model.pt, loaded with torch::load(model, path).
void save_model_file(torch::nn::Module& model, const std::string& path);
/// The model's state dict (parameters and buffers by their dotted names, PyTorch's
/// `state_dict()` keys: torchvision's for the ResNets) as a .safetensors file.
void save_safetensors(const torch::nn::Module& model, const std::string& path);
/// Loads a .safetensors state dict into `model`, strictly: every parameter and buffer by
/// name and shape, nothing left over. Throws ConfigError "<path>: has no tensor 'fc.bias'
/// (the model's is [10])", "... 'fc.weight' is [3, 512], the model's is [10, 512]", ...
void load_safetensors(torch::nn::Module& model, const std::string& path);
/// Copies `state` into `model`'s parameters and buffers (each keeps its device), by dotted
/// name and shape, nothing missing or left over; `source` begins each error, as above.
void load_state(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& state, const std::string& source);

struct ScoreRule {
  std::string metric;  ///< e.g. "val/accuracy"
  bool maximize = true;
  bool better(double a, double b, double min_delta = 0) const {
    return maximize ? a > b + min_delta : a < b - min_delta;
  }
};

/// Keeps the best `n_saved` models of the run in <run>/best/, named with the epoch and
/// score (best_epoch3_val-accuracy=0.9142.pt), as Ignite's Checkpoint with a score
/// function does. A file is a LibTorch archive of the model's parameters and buffers.
class BestModels {
 public:
  BestModels(ScoreRule rule, int n_saved) : rule_(std::move(rule)), n_(n_saved) {}
  /// Saves the model if it is among the best so far (rank 0 writes); returns the file or "".
  std::string update(int64_t epoch, double score, torch::nn::Module& model, const std::string& run_dir, bool write);
  const ScoreRule& rule() const { return rule_; }
  YAML::Node state() const;
  void load(const YAML::Node& state);

 private:
  struct Entry {
    double score;
    int64_t epoch;
    std::string file;
  };
  ScoreRule rule_;
  int n_;
  std::vector<Entry> kept_;  ///< best first
};

class EarlyStopping {
 public:
  EarlyStopping(ScoreRule rule, int patience, double min_delta)
      : rule_(std::move(rule)), patience_(patience), min_delta_(min_delta) {}
  /// True when training should stop after this validation; `why` says why.
  bool update(int64_t epoch, double score, std::string* why);
  const ScoreRule& rule() const { return rule_; }
  YAML::Node state() const;
  void load(const YAML::Node& state);

 private:
  ScoreRule rule_;
  int patience_;
  double min_delta_;
  bool has_best_ = false;
  double best_ = 0;
  int64_t best_epoch_ = 0;
  int wait_ = 0;
};

}  // namespace runner
