#pragma once
// The interfaces a plugin component implements, one per kind, and the context the
// host gives each factory. Contracts that hold for every kind:
//  - Factories run once per rank, on the main thread, after the config block has been
//    validated against the component's Schema. They throw (ParamError for a bad
//    parameter, any std::exception otherwise); the host reports the message.
//  - Objects made by a plugin are owned by the host and destroyed before the process
//    exits; plugin libraries are never unloaded while the process runs.
//  - Components must not keep references to host objects past the call that passed them.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runner/api.hpp"
#include "runner/params.hpp"
#include "runner/rng.hpp"

namespace runner {

// ---------------------------------------------------------------- dataflow

/// A random-access set of samples. `get` is called concurrently from loader
/// threads and must be thread-safe (read-only state is enough).
class RUNNER_API Dataset {
 public:
  virtual ~Dataset();
  virtual int64_t size() const = 0;
  /// Shape of one input sample as the model sees it, e.g. {1, 28, 28}.
  virtual std::vector<int64_t> sample_shape() const = 0;
  /// Writes sample `index` (augmented and normalised) as float32 to `out`
  /// (prod(sample_shape()) values) and its class to `*target`. All randomness
  /// must come from `rng`, which the loader derives from (seed, epoch, index).
  virtual void get(int64_t index, float* out, int64_t* target, Rng& rng) const = 0;
};

struct DataflowContext {
  uint64_t seed = 0;
  int rank = 0;        ///< this process's rank
  int world_size = 1;  ///< number of ranks
};

/// What a dataflow component produces: datasets plus how to batch them. The host's
/// loader shuffles, shards across ranks, batches and prefetches in worker threads.
struct Dataflow {
  std::shared_ptr<Dataset> train;
  std::shared_ptr<Dataset> val;
  /// Optional: training samples with the evaluation transforms, evaluated beside `val`
  /// and logged as train_eval/<metric> (see random_subset).
  std::shared_ptr<Dataset> train_eval;
  int64_t batch_size = 0;      ///< global batch (all ranks together)
  int64_t val_batch_size = 0;  ///< global; 0 means batch_size
  int num_workers = 1;         ///< loader threads per rank (0: load on the training thread)
  int prefetch = 2;            ///< batches in flight per worker
  bool drop_last = false;      ///< drop the last partial training batch
  int64_t num_classes = 0;
  /// A sample whose get() throws SampleError is replaced by the next one (counted and
  /// logged with its path); false: the run fails on it.
  bool skip_bad_samples = false;
  std::string description;  ///< one line for the run log
};

/// `n` samples of `dataset` drawn without replacement by a permutation seeded by `seed`
/// (all of it when n >= size), in a fixed order. For Dataflow::train_eval.
RUNNER_API std::shared_ptr<Dataset> random_subset(std::shared_ptr<const Dataset> dataset, int64_t n, uint64_t seed);

/// Declares the batching parameters every dataflow shares: batch_size (global),
/// val_batch_size, num_workers, prefetch, drop_last.
RUNNER_API void add_loader_params(Schema& schema, int64_t default_batch_size);
/// Copies those parameters from validated `params` into `dataflow`.
RUNNER_API void read_loader_params(const Params& params, Dataflow& dataflow);

// ---------------------------------------------------------------- model

struct ModelContext {
  std::vector<int64_t> input_shape;  ///< one sample, from the dataflow, e.g. {1, 28, 28}
  int64_t num_classes = 0;           ///< from the dataflow
};

/// A classification network: input [N, ...input_shape] -> logits [N, num_classes].
/// Register sub-modules with register_module so parameters, buffers and the model
/// summary see them. Call trace("name", t) on notable intermediate outputs: it costs
/// nothing in training and lets the model summary show output shapes.
class RUNNER_API Model : public torch::nn::Module {
 public:
  using Recorder = std::function<void(const std::string& name, const torch::Tensor& output)>;
  ~Model() override;
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  /// Host only: set while computing the model summary, cleared afterwards.
  void set_recorder(Recorder recorder) { recorder_ = std::move(recorder); }

 protected:
  const torch::Tensor& trace(const std::string& name, const torch::Tensor& output) {
    if (recorder_) recorder_(name, output);
    return output;
  }

 private:
  Recorder recorder_;
};

// ---------------------------------------------------------------- optimizer

/// An optimizer factory receives the model's trainable parameters. The host sets the
/// learning rate of every parameter group through OptimizerOptions::set_lr each
/// iteration (from the scheduler); the optimizer's `lr` is the scheduler's base value.
using ParameterList = std::vector<torch::Tensor>;

// ---------------------------------------------------------------- criterion

class RUNNER_API Criterion {
 public:
  virtual ~Criterion();
  /// Mean loss of a batch: logits [N, C], targets [N] (int64 class indices).
  virtual torch::Tensor operator()(const torch::Tensor& logits, const torch::Tensor& targets) = 0;
};

// ---------------------------------------------------------------- scheduler

struct SchedulerContext {
  double base_lr = 0;                ///< the optimizer's configured lr
  int64_t iterations_per_epoch = 0;  ///< optimizer steps per epoch on every rank
  int64_t total_iterations = 0;      ///< iterations_per_epoch * num_epochs
};

/// A per-iteration learning-rate rule. `lr(i)` is the rate used for the optimizer
/// step of iteration i (0-based, counted across epochs). It must be a pure function of
/// i and the state: the host saves `state()` in checkpoints and restores it with
/// `load_state()` before asking for lr again.
class RUNNER_API Scheduler {
 public:
  virtual ~Scheduler();
  virtual double lr(int64_t iteration) const = 0;
  virtual YAML::Node state() const { return YAML::Node(); }
  virtual void load_state(const YAML::Node& /*state*/) {}
};

/// Reads a duration parameter written as iterations (`500`) or epochs (`2ep`, `0.5ep`)
/// and returns iterations. Throws ParamError naming `key` otherwise.
RUNNER_API int64_t to_iterations(const YAML::Node& value, int64_t iterations_per_epoch, const std::string& key);

// ---------------------------------------------------------------- metric

/// What one evaluated batch gives a metric.
struct BatchOutput {
  torch::Tensor logits;   ///< [N, C] (N may differ between ranks and batches)
  torch::Tensor targets;  ///< [N], int64 class indices
  double loss = 0;        ///< the criterion's mean loss over the batch
};

/// A validation metric, logged as `val/<name()>`. Each rank updates its own instance
/// over its shard of the validation set; the host then *sums* state() over ranks,
/// calls set_state() with the sums and reads compute(). So state() must be additive
/// sufficient statistics (counts, totals), and compute() a function of them alone.
/// Runs on the main thread of every rank; update() must not communicate.
class RUNNER_API Metric {
 public:
  virtual ~Metric();
  virtual std::string name() const = 0;
  virtual void reset() = 0;
  virtual void update(const BatchOutput& out) = 0;
  virtual double compute() const = 0;
  virtual std::vector<double> state() const = 0;
  virtual void set_state(const std::vector<double>& state) = 0;
};

struct MetricContext {
  int64_t num_classes = 0;  ///< from the dataflow
};

// ---------------------------------------------------------------- handler

/// What a handler sees at an event. Values are the same on every rank.
struct TrainingState {
  int64_t epoch = 0;  ///< 1-based
  int64_t max_epochs = 0;
  int64_t iteration = 0;                     ///< 1-based, counted across epochs
  int64_t epoch_iteration = 0;               ///< 1-based within the epoch
  int64_t epoch_length = 0;                  ///< iterations per epoch
  double batch_loss = 0;                     ///< the last global batch's mean loss
  double lr = 0;                             ///< the learning rate of the last step
  std::map<std::string, double> metrics;     ///< the last validation's values ("val/accuracy", ...)
  const torch::nn::Module* model = nullptr;  ///< after the step: parameters and their .grad
  std::string run_dir;                       ///< the run folder (written by rank 0 only)
  int rank = 0;
  int world_size = 1;
  /// Adds a scalar to this iteration's (or epoch's) line in metrics.jsonl (rank 0 writes it).
  std::function<void(const std::string& key, double value)> log;
};

struct HandlerContext {
  int rank = 0;
  int world_size = 1;
  std::string run_dir;
  int64_t iterations_per_epoch = 0;
  int64_t total_iterations = 0;
};

/// Event callbacks attached from the config (`handlers: [{name: ..., ...}]`), called in
/// config order after the host's own handlers for the same event:
///  - started() once before the first epoch; epoch_started(); iteration_completed()
///    after every optimizer step; epoch_completed() after the epoch's validation (when
///    there is one, so `metrics` is fresh); completed() after the last epoch.
///  - On rank 0 only, unless every_rank() returns true. A handler that runs on every
///    rank must do the same thing on each (no collectives of its own).
///  - Called on the main thread. It may read the model and write files (under run_dir
///    on rank 0); it must not modify parameters, gradients or the optimizer, keep the
///    `state` or the model pointer past the call, or block for long.
///  - An exception ends the run as a failure, with the handler's name in the message.
class RUNNER_API Handler {
 public:
  virtual ~Handler();
  virtual bool every_rank() const { return false; }
  virtual void started(const TrainingState& /*state*/) {}
  virtual void epoch_started(const TrainingState& /*state*/) {}
  virtual void iteration_completed(const TrainingState& /*state*/) {}
  virtual void epoch_completed(const TrainingState& /*state*/) {}
  virtual void completed(const TrainingState& /*state*/) {}
};

}  // namespace runner
