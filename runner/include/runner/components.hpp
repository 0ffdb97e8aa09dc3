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
#include <optional>
#include <string>
#include <vector>

#include "runner/api.hpp"
#include "runner/params.hpp"
#include "runner/rng.hpp"

namespace runner {

// ---------------------------------------------------------------- samples and batches

/// Named tensors: the fields of a batch ("input", "target", ...) or a model's outputs
/// ("logits", ...).
using TensorDict = std::map<std::string, torch::Tensor>;

/// `dict[name]`, or an Error naming `who` ("criterion 'cross_entropy'"), what it looked
/// for and the names there are.
RUNNER_API const torch::Tensor& at(const TensorDict& dict, const std::string& name, const std::string& who);

/// One named tensor of every sample.
struct Field {
  std::string name;
  torch::Dtype dtype = torch::kFloat32;
  std::vector<int64_t> shape;  ///< without the batch dimension; {} for a scalar
  /// Variable length: when set, the loader fills the field with `pad` before get(), so a
  /// sample may write only a prefix of it (and its length in a field of its own).
  std::optional<double> pad;
};
using Fields = std::vector<Field>;

/// Where Dataset::get writes one sample: the memory of each declared field, inside the
/// batch being assembled (contiguous, the field's shape and dtype).
class RUNNER_API Sample {
 public:
  explicit Sample(const Fields& fields) : fields_(&fields), data_(fields.size(), nullptr) {}
  /// The memory of field `name`; T must be its dtype (float, int64_t, uint8_t, ...).
  template <class T>
  T* data(const std::string& name) const {
    return static_cast<T*>(raw(name, c10::CppTypeToScalarType<T>::value));
  }
  /// The field's memory whatever its dtype (for copying whole rows).
  void* bytes(const std::string& name) const;
  /// The field as a tensor over that memory (write with copy_, fill_, accessors).
  torch::Tensor tensor(const std::string& name) const;
  /// Host only: where field i of the current sample lives.
  void set_data(size_t i, void* p) { data_[i] = p; }

 private:
  void* raw(const std::string& name, torch::Dtype dtype) const;
  const Fields* fields_;
  std::vector<void*> data_;
};

// ---------------------------------------------------------------- dataflow

/// A random-access set of samples. `get` is called concurrently from loader threads and
/// must be thread-safe (read-only state is enough). All randomness must come from `rng`,
/// which the loader derives from (seed, epoch, index).
///
/// Any task: override fields() and get(index, Sample&, rng).
/// Classification (the adapter): override sample_shape() and get(index, float*, int64_t*,
/// rng); the fields are then "input" (float32, sample_shape()) and "target" (int64 class).
class RUNNER_API Dataset {
 public:
  virtual ~Dataset();
  virtual int64_t size() const = 0;
  /// The fields every sample has (names unique, fixed shapes).
  virtual Fields fields() const;
  /// Writes sample `index` (augmented and normalised) into `out`'s fields.
  virtual void get(int64_t index, const Sample& out, Rng& rng) const;

  /// Classification: shape of one input sample as the model sees it, e.g. {1, 28, 28}.
  virtual std::vector<int64_t> sample_shape() const;
  /// Classification: writes sample `index` as float32 to `out` (prod(sample_shape())
  /// values) and its class to `*target`.
  virtual void get(int64_t index, float* out, int64_t* target, Rng& rng) const;
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
  int64_t num_classes = 0;     ///< classes of "target" (the vocabulary of a language model); 0: none
  /// A sample whose get() throws SampleError is replaced by the next one (counted and
  /// logged with its path); false: the run fails on it.
  bool skip_bad_samples = false;
  std::string description;  ///< one line for the run log
  /// Files for the run folder (name -> contents), e.g. a language model's vocabulary
  /// "vocab.yaml" (`tokens: [...]`, token id = index: what `runner sample` decodes with).
  /// Rank 0 writes them before training; checkpoints keep them, and a resume whose
  /// dataflow makes different contents is refused.
  std::map<std::string, std::string> files;
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
  std::vector<int64_t> input_shape;  ///< one sample's "input" field, e.g. {1, 28, 28} ({} without one)
  int64_t num_classes = 0;           ///< from the dataflow
  Fields fields;                     ///< every field of a sample, from the dataflow
};

/// A network. Register sub-modules with register_module so parameters, buffers and the
/// model summary see them; a parameter registered under two names (tied weights) is
/// stepped, all-reduced and counted once. Call trace("name", t) on notable intermediate
/// outputs: it costs nothing in training and lets the model summary show output shapes.
///
/// Any task: override inputs() and forward_batch(batch) -> named outputs.
/// One input, one output (the adapter): override forward(x); the model then reads the
/// "input" field and returns {"logits": forward(input)}.
class RUNNER_API Model : public torch::nn::Module {
 public:
  using Recorder = std::function<void(const std::string& name, const torch::Tensor& output)>;
  ~Model() override;
  /// The batch fields forward_batch reads, checked against the dataflow's before training.
  virtual std::vector<std::string> inputs() const { return {"input"}; }
  /// The batch (every field, this rank's micro-batch) in, named outputs out (at least one).
  virtual TensorDict forward_batch(const TensorDict& batch);
  /// input [N, ...input_shape] -> logits [N, C, ...] (classes in dimension 1, as
  /// torch.nn.functional.cross_entropy expects).
  virtual torch::Tensor forward(torch::Tensor x);
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

/// Optional, for `cuda_graph: true` (a training step captured once in a CUDA graph and
/// replayed): an optimizer whose step() a graph can hold. Such a step launches device work
/// only: no host reads, and no host-side state that a replay, which runs none of step()'s host
/// code, would leave behind (counts the checkpoint saves are read from the device in save()).
/// After lr_from_tensors() it reads each parameter group's learning rate from a float32 scalar
/// tensor on the group's device, which refresh_lr() sets from the group's options (the
/// scheduler's value): the host calls refresh_lr() before every step, outside the graph. The
/// built-in sgd, adam and adamw with fused kernels (`fused`, the default on CUDA) are such
/// optimizers; find one with dynamic_cast from torch::optim::Optimizer.
class RUNNER_API CapturableOptimizer {
 public:
  virtual ~CapturableOptimizer();
  /// From now on step() reads the learning rate from the groups' tensors.
  virtual void lr_from_tensors() = 0;
  /// Each group's options().get_lr() into its tensor: a device write, no host read.
  virtual void refresh_lr() = 0;
};

// ---------------------------------------------------------------- criterion

/// The training loss. Any task: override inputs() and loss(outputs, batch). Classification
/// (the adapter): override operator()(logits, targets), which gets the model's "logits"
/// and the batch's "target".
class RUNNER_API Criterion {
 public:
  virtual ~Criterion();
  /// The batch fields loss() reads, checked against the dataflow's before training.
  virtual std::vector<std::string> inputs() const { return {"target"}; }
  /// Mean loss of a (micro-)batch, a scalar tensor.
  virtual torch::Tensor loss(const TensorDict& outputs, const TensorDict& batch);
  /// Mean loss of a batch: logits [N, C, ...], targets [N, ...] (int64 class indices).
  virtual torch::Tensor operator()(const torch::Tensor& logits, const torch::Tensor& targets);
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
  const TensorDict* outputs = nullptr;  ///< the model's outputs (floating point ones as float32)
  const TensorDict* batch = nullptr;    ///< the batch's fields
  int64_t samples = 0;                  ///< N, the batch's samples (may differ between ranks and batches)
  torch::Tensor logits;                 ///< outputs["logits"] when there is one: [N, C, ...]
  torch::Tensor targets;                ///< batch["target"] when there is one: [N, ...]
  double loss = 0;                      ///< the criterion's mean loss over the batch
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
  Fields fields;            ///< every field of a sample, from the dataflow
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
