#pragma once
// Saving and restoring a training run: what a checkpoint holds (model, optimizer
// state, scheduler state, RNG states of every rank, engine counters, running loss,
// last validation, the resolved config) and how a run resumes from one. Both are
// collectives: rank 0 reads and writes files, every rank restores the same state.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/tree.hpp"
#include "device/device.hpp"
#include "dist/communicator.hpp"
#include "engine/ema.hpp"
#include "runner/components.hpp"

namespace runner {

/// Where training stands (besides model, optimizer and scheduler).
struct TrainerPosition {
  int64_t epoch = 0;            ///< epochs started (1-based); with epoch_iteration == epoch_length, done
  int64_t iteration = 0;        ///< optimizer steps taken
  int64_t epoch_iteration = 0;  ///< steps taken in `epoch`
  double running_loss = 0;
  bool running_loss_set = false;
  std::vector<std::pair<std::string, double>> last_val;
  YAML::Node trackers;  ///< best-K and early-stopping state
};

/// What a checkpoint holds besides the position.
struct TrainingObjects {
  torch::nn::Module& model;
  torch::optim::Optimizer& optimizer;
  Scheduler& scheduler;
  const device::Placement& placement;  ///< where the tensors live; its RNG is saved per rank
  Ema* ema = nullptr;                  ///< `ema:`, when on
  /// The dataflow's run-folder files (a vocabulary): saved, and compared on resume.
  const std::map<std::string, std::string>* files = nullptr;
};

/// Collective. Rank 0 writes <run_dir>/checkpoints/checkpoint_<iteration>.ckpt atomically
/// (with `config_yaml`, the resolved config), updates `latest` and keeps the newest
/// `n_saved`. Returns the path (rank 0).
std::string save_checkpoint(Communicator& comm, const std::string& run_dir, int n_saved, const std::string& config_yaml,
                            TrainingObjects objects, const TrainerPosition& position);

/// The rule for resuming on another device kind ("cpu", "cuda") than the checkpoint's:
/// refused (ConfigError naming `path`) unless `device` is in resume_allow_changes, since
/// the device's random state cannot continue there.
void check_device_change(const std::string& saved, const std::string& here, const std::vector<std::string>& allow,
                         const std::string& path);

struct Resumed {
  std::string path;     ///< the checkpoint file
  std::string run_dir;  ///< the run folder it belongs to (training continues there)
  TrainerPosition position;
};

/// Where to resume from and what may differ.
struct ResumeRequest {
  std::string from;                        ///< a checkpoint file, a run folder, or "auto"
  std::string runs_root;                   ///< where `auto` looks: <output_path>/<config name>
  std::vector<std::string> allow_changes;  ///< resume_allow_changes
  const config::Node* config = nullptr;    ///< the resolved config of this run
};

/// The run folder under `runs_root` that a launch with `launch_id` made (its launch.yaml
/// says so) and that holds a checkpoint, newest first; empty if there is none. A
/// restarted torchrun job continues there by itself.
std::string find_launch_run(const std::string& runs_root, const std::string& launch_id);

/// The launch.yaml of a new run folder: who started it, for find_launch_run.
std::string launch_yaml(const std::string& launcher, const std::string& launch_id, int world_size);

/// The keys whose values differ between a checkpoint's config (`saved`) and this run's
/// (`current`, resolved) and may not: "key (old -> new)" each. What may differ: the keys in
/// `allowed` (resume_allow_changes, a prefix covers what lies under it), what does not change
/// what is trained (where and how the run is logged, launched and checkpointed), and a key the
/// checkpoint lacks that this run has at its schema default (one a newer runner added, e.g.
/// cuda_graph).
std::vector<std::string> refused_changes(const config::Node& saved, const config::Node& current,
                                         const std::vector<std::string>& allowed);

/// Collective. Finds the checkpoint `request.from` names (rank 0; for a folder or `auto`,
/// the newest valid file, reporting damaged ones and falling back), sends it to every
/// rank, refuses a config that differs in keys not allowed to change, and restores
/// model, optimizer, scheduler and RNG state.
Resumed resume(Communicator& comm, const ResumeRequest& request, TrainingObjects objects);

}  // namespace runner
