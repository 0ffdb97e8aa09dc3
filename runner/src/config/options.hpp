#pragma once
// The host's own options, in blocks. Each block declares every key once, in `fields`:
// its name, the member it fills, its help text and its constraints; the member's
// initial value is the default. The same declaration builds the schema (validation,
// print-config, `runner help`) and reads the validated values, so a new option is one
// member plus one line. Each part of the runner receives the block it uses.
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "config/tree.hpp"
#include "runner/params.hpp"

namespace runner {

/// The run: length, seed, cadence, where run folders go, threads, plugins.
struct RunOptions {
  uint64_t seed = 543;
  int64_t num_epochs = 0;
  std::optional<std::string> max_time;  ///< e.g. "4h"; see max_time_seconds()
  int64_t validate_every = 1;
  int64_t log_every_iters = 50;
  std::string output_path = "experiments/runs";
  int threads = 0;
  std::vector<std::string> plugins;
  template <class F>
  void fields(F&& f) {
    f("seed", seed, "random seed of weights, data order and augmentation").min(0);
    f("num_epochs", num_epochs, "number of training epochs").required().min(1);
    f("max_time", max_time,
      "wall-clock budget of the job (e.g. 45m, 4h, 1d12h): then checkpoint, write the reports and exit 75 (resume "
      "with resume_from=auto)");
    f("validate_every", validate_every, "validate every N epochs (and always after the last)").min(1);
    f("log_every_iters", log_every_iters, "log train/batch_loss and lr every N iterations").min(1);
    f("output_path", output_path, "root folder of run folders");
    f("threads", threads, "compute threads of this rank (0: all cores of this rank)").min(0);
    f("plugins", plugins, "extra plugin libraries or folders (relative to this file)");
  }
  /// max_time in seconds, or 0 when unset. Valid after read (checked there).
  double max_time_seconds() const;
  void check(const config::Node& top) const;
};

/// Checkpoints and resume.
struct CheckpointOptions {
  std::optional<int64_t> checkpoint_every;
  int n_saved_checkpoints = 2;
  std::optional<std::string> resume_from;
  std::vector<std::string> resume_allow_changes;
  template <class F>
  void fields(F&& f) {
    f("checkpoint_every", checkpoint_every, "also checkpoint every N iterations (always at each epoch end)").min(1);
    f("n_saved_checkpoints", n_saved_checkpoints, "checkpoint files kept in <run>/checkpoints (newest)").min(1);
    f("resume_from", resume_from,
      "continue a run: a checkpoint file, a run folder (its newest valid checkpoint) or auto (newest run of this "
      "config)");
    f("resume_allow_changes", resume_allow_changes,
      "config keys that may differ from the checkpoint's (e.g. num_epochs)");
  }
  /// Makes a relative resume_from that names no existing path relative to its config file.
  void check(const config::Node& top);
};

/// The training step: device, determinism, precision, layout, clipping, accumulation.
struct StepOptions {
  std::string device = "auto";
  bool pin_memory = true;
  bool tf32 = false;
  bool deterministic = false;
  std::string amp = "none";
  bool channels_last = false;
  bool fused_kernels = true;
  std::optional<double> grad_clip_norm;
  int64_t grad_accumulation_steps = 1;
  bool cuda_graph = false;
  template <class F>
  void fields(F&& f) {
    f("device", device,
      "where each rank computes: auto (a CUDA GPU when one is usable, else the CPU), cpu, or cuda (one GPU per rank, "
      "by local rank)")
        .one_of({"auto", "cpu", "cuda"});
    f("pin_memory", pin_memory,
      "on CUDA: assemble batches in page-locked memory and copy them on a side stream, one batch ahead");
    f("tf32", tf32, "on CUDA: TensorFloat-32 for float32 matmuls and convolutions (faster, ~1e-3 relative error)");
    f("deterministic", deterministic,
      "use deterministic algorithms only (reproducible runs; on CUDA also cuDNN/cuBLAS determinism, no autotuning)");
    f("amp", amp,
      "mixed precision: none (float32), bf16 (autocast to bfloat16; CPU and CUDA), fp16 (CUDA, with a loss scaler)")
        .one_of({"none", "bf16", "fp16"});
    f("channels_last", channels_last, "NHWC memory layout for 4-D weights and inputs (convolutional models)");
    f("fused_kernels", fused_kernels,
      "on the CPU: BatchNorm (with the residual add and ReLU where the built-in models fuse them) in one kernel "
      "(training, channels_last); false: LibTorch's separate operators");
    f("grad_clip_norm", grad_clip_norm, "clip the global gradient L2 norm to this value before each step")
        .greater_than(0);
    f("grad_accumulation_steps", grad_accumulation_steps,
      "split each rank's batch into N micro-batches, summing gradients (gradients are synchronised once, after the "
      "last)")
        .min(1);
    f("cuda_graph", cuda_graph,
      "on CUDA: capture the training step (forward, backward, optimizer) once in a CUDA graph and replay it for every "
      "full batch (one process, amp none or bf16, no gradient accumulation, an optimizer with fused kernels)");
  }
};

/// Failure injection, for tests and demos.
struct FaultOptions {
  std::optional<int64_t> crash_iteration;
  int crash_rank = -1;
  std::string crash_mode = "throw";
  template <class F>
  void fields(F&& f) {
    f("crash_iteration", crash_iteration, "fail on purpose at this iteration (tests and demos)").min(1);
    f("crash_rank", crash_rank, "the rank that fails at crash_iteration (-1: every rank)").min(-1);
    f("crash_mode", crash_mode, "how it fails: throw an error, kill itself, hang, or throw inside the next validation")
        .one_of({"throw", "kill", "hang", "validation"});
  }
};

/// What `best:` and `early_stopping:` share: which validation metric, and which way is better.
struct ScoreOptions {
  std::string metric;
  std::string mode;
  bool maximize() const { return mode == "max"; }

 protected:
  ScoreOptions(std::string metric_default, std::string mode_default)
      : metric(std::move(metric_default)), mode(std::move(mode_default)) {}
  template <class F>
  void score_fields(F&& f, const char* metric_help) {
    f("metric", metric, metric_help);
    f("mode", mode, "max: higher is better; min: lower is better").one_of({"max", "min"});
  }
};

/// `best:` keeps the best models by a validation metric.
struct BestOptions : ScoreOptions {
  int n_saved = 2;
  BestOptions() : ScoreOptions("val/accuracy", "max") {}
  template <class F>
  void fields(F&& f) {
    score_fields(f, "validation metric that ranks the models");
    f("n_saved", n_saved, "best models kept in <run>/best").min(1);
  }
};

/// `early_stopping:` stops when a validation metric stops improving.
struct EarlyStoppingOptions : ScoreOptions {
  int patience = 5;
  double min_delta = 0;
  EarlyStoppingOptions() : ScoreOptions("val/loss", "min") {}
  template <class F>
  void fields(F&& f) {
    score_fields(f, "validation metric to watch");
    f("patience", patience, "validations without improvement before stopping").min(1);
    f("min_delta", min_delta, "smallest change that counts as an improvement").min(0);
  }
};

/// `ema:` an exponential moving average of the weights (parameters and floating-point
/// buffers), updated after every optimizer step, evaluated as val_ema/*, kept in
/// checkpoints and written as <run>/ema_model.pt. `ema: true` takes the defaults.
struct EmaOptions {
  double decay = 0.999;
  template <class F>
  void fields(F&& f) {
    f("decay", decay, "weight of the average at each step: avg = decay * avg + (1 - decay) * weights")
        .greater_than(0)
        .max(1);
  }
};

/// `profile:` a trace of chosen iterations (LibTorch's Kineto profiler) written to
/// <run>/profile/ as Chrome trace JSON, with a table of the busiest operators and the
/// achieved GFLOP/s. `profile: true` takes the defaults.
struct ProfileOptions {
  int64_t wait = 5;
  int64_t active = 10;
  bool record_shapes = true;
  template <class F>
  void fields(F&& f) {
    f("wait", wait, "iterations of this process to skip before tracing (warm-up: allocators, autotuning)").min(0);
    f("active", active, "iterations to trace").min(1);
    f("record_shapes", record_shapes, "record operator input shapes (also needed for the FLOP counts)");
  }
};

/// `dist:` how ranks communicate.
struct DistOptions {
  std::string backend = "auto";
  double bucket_mb = 25;
  bool sync_batchnorm = false;
  double timeout = 60;
  template <class F>
  void fields(F&& f) {
    f("backend", backend,
      "collective backend: auto (nccl for CUDA tensors, else mpi, or gloo under torchrun), mpi, gloo or nccl")
        .one_of({"auto", "mpi", "gloo", "nccl"});
    f("bucket_mb", bucket_mb, "gradient bucket size in MB (all-reduced as soon as backward fills one)").greater_than(0);
    f("sync_batchnorm", sync_batchnorm,
      "BatchNorm statistics over the global batch (models built with runner::nn::BatchNorm2d)");
    f("timeout", timeout, "seconds a collective may wait for a peer before every rank aborts (0: never)").min(0);
  }
};

/// `tracking.mlflow:` an MLflow file store or tracking server.
struct MlflowOptions {
  std::string uri = "file:./mlruns";
  std::optional<std::string> experiment;
  std::optional<std::string> run_name;
  template <class F>
  void fields(F&& f) {
    f("uri", uri,
      "the file store (file:PATH or a folder, relative to the working folder) or a tracking server "
      "(http://HOST:PORT)");
    f("experiment", experiment, "experiment name (created if missing; default: the config's name)");
    f("run_name", run_name, "run name shown by mlflow ui (default: the run folder's name)");
  }
  /// Refuses a URI of another kind and an empty experiment name.
  void check(const config::Node& block) const;
};

/// `tracking:` what the run folder gets besides metrics.jsonl and metrics.csv.
struct TrackingOptions {
  bool tensorboard = true;
  bool report = true;
  std::optional<MlflowOptions> mlflow;
  template <class F>
  void fields(F&& f) {
    f("tensorboard", tensorboard, "TensorBoard event files in <run>/tb (rank 0)");
    f("report", report, "<run>/report.html with curves, refreshed at each validation");
    f("mlflow", mlflow, "MLflow: {uri: file:./mlruns or http://HOST:PORT, experiment: NAME, run_name: NAME}");
  }
};

namespace options {

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
constexpr ParamType type_of() {
  if constexpr (std::is_same_v<T, bool>)
    return ParamType::Bool;
  else if constexpr (std::is_integral_v<T>)
    return ParamType::Int;
  else if constexpr (std::is_floating_point_v<T>)
    return ParamType::Float;
  else if constexpr (std::is_same_v<T, std::string>)
    return ParamType::String;
  else if constexpr (std::is_same_v<T, std::vector<std::string>>)
    return ParamType::List;
  else
    return ParamType::Map;  // a nested block
}

/// Builds a block's Schema from its fields (defaults from the members' initial values).
struct SchemaBuilder {
  Schema schema;
  template <class T>
  ParamSpec& operator()(const char* key, const T& member, const char* help) {
    if constexpr (is_optional<T>::value) {
      return schema.add(key, type_of<typename T::value_type>(), help).allow_null();
    } else {
      ParamSpec& spec = schema.add(key, type_of<T>(), help);
      if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
        spec.def(static_cast<int64_t>(member));
      else
        spec.def(member);
      return spec;
    }
  }
};

bool as_bool(const config::Node& n);

/// Reads a validated block (every key present, defaults filled) into its members.
struct Reader {
  const config::Node& block;
  ParamSpec ignored;  // what the constraint calls of `fields` act on while reading
  template <class T>
  ParamSpec& operator()(const char* key, T& member, const char*) {
    if (const config::Node* n = block.find(key)) read(*n, member);
    return ignored;
  }
  template <class T>
  static void read(const config::Node& n, T& out) {
    if constexpr (is_optional<T>::value) {
      if (n.is_null()) {
        out.reset();
      } else {
        typename T::value_type v{};
        read(n, v);
        out = std::move(v);
      }
    } else if constexpr (std::is_same_v<T, bool>) {
      out = as_bool(n);
    } else if constexpr (std::is_integral_v<T>) {
      out = static_cast<T>(std::stoll(n.scalar));
    } else if constexpr (std::is_floating_point_v<T>) {
      out = std::strtod(n.scalar.c_str(), nullptr);
    } else if constexpr (std::is_same_v<T, std::string>) {
      out = n.scalar;
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      out.clear();
      for (const config::Node& item : n.items) out.push_back(item.scalar);
    } else {
      out.fields(Reader{n, {}});
    }
  }
};

}  // namespace options

/// The schema a block declares (built once per block type).
template <class Block>
const Schema& schema_of() {
  static const Schema schema = [] {
    options::SchemaBuilder b;
    Block().fields(b);
    return b.schema;
  }();
  return schema;
}

/// The block's values from a validated config block.
template <class Block>
Block read_block(const config::Node& block) {
  Block out;
  out.fields(options::Reader{block, {}});
  return out;
}

}  // namespace runner
