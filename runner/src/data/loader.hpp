#pragma once
// Batches from a Dataset: one permutation per epoch seeded by (seed, epoch), global
// batch i = permutation[i*B, (i+1)*B), split across ranks in rank order, so the
// union of the ranks' i-th batches is exactly the single-process batch i. Batches are
// assembled in worker threads and handed out in order through a bounded queue.
#include <torch/torch.h>

#include <condition_variable>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "runner/components.hpp"

namespace runner {

struct LoaderOptions {
  int64_t global_batch = 1;
  bool shuffle = false;
  bool drop_last = false;
  /// Without drop_last, a last partial batch smaller than this is dropped anyway (e.g.
  /// the world size when every rank must get at least one sample).
  int64_t min_last_batch = 1;
  int num_workers = 1;
  int prefetch = 2;  ///< batches in flight per worker
  uint64_t seed = 0;
  int rank = 0;
  int world_size = 1;
  /// A sample whose get() throws SampleError is replaced by the next index (logged once
  /// per sample); false: the error ends the run.
  bool skip_bad_samples = false;
  /// Assemble batches in page-locked host memory (for asynchronous copies to a GPU).
  bool pin_memory = false;
};

struct Batch {
  TensorDict data;          ///< the dataset's fields, [n, ...field shape] each
  int64_t index = 0;        ///< batch index within the epoch
  int64_t global_size = 0;  ///< samples of this batch over all ranks
  /// n, this rank's samples (0 for a rank's empty share of a small last batch).
  int64_t size() const { return data.empty() ? 0 : data.begin()->second.size(0); }
  /// The batch's tensors, for whatever moves or inspects all of them (the device copy).
  std::vector<torch::Tensor*> tensors() {
    std::vector<torch::Tensor*> out;
    for (auto& [name, t] : data) out.push_back(&t);
    return out;
  }
};

/// Where an Engine takes its batches from: a Loader, or a DevicePrefetcher over one.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  /// Starts epoch `epoch` (1-based) at batch `first_batch`.
  virtual void start_epoch(int64_t epoch, int64_t first_batch = 0) = 0;
  /// The next batch of the epoch, or false at its end.
  virtual bool next(Batch& out) = 0;
};

class Loader : public BatchSource {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const override { return num_batches_; }
  int64_t dataset_size() const { return size_; }
  /// Starts epoch `epoch` (1-based) at batch `first_batch`; earlier batches are
  /// skipped by index, without reading their samples.
  void start_epoch(int64_t epoch, int64_t first_batch = 0) override;
  /// The next batch of the epoch, or false at its end. Rethrows a worker's exception.
  bool next(Batch& out) override;
  /// Distinct unreadable samples (by their error message, which names the file) met so
  /// far by all loaders of this process; each is logged once.
  static int64_t bad_samples();

 private:
  struct Plan {
    int64_t epoch;
    uint64_t generation;
    std::vector<int64_t> order;
  };
  Batch build(const Plan& plan, int64_t b) const;
  void get_sample(int64_t epoch, int64_t index, const Sample& out) const;
  void worker_loop();
  void stop_workers();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions opt_;
  int64_t size_ = 0;
  int64_t num_batches_ = 0;
  Fields fields_;
  std::vector<int64_t> field_bytes_;  ///< one sample's bytes of each field

  std::mutex mu_;
  std::condition_variable cv_work_, cv_ready_;
  std::shared_ptr<const Plan> plan_;
  uint64_t generation_ = 0;
  int64_t next_task_ = 0, next_out_ = 0;
  std::map<int64_t, Batch> ready_;
  std::exception_ptr error_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace runner
