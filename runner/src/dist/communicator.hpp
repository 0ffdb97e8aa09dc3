#pragma once
// The narrow interface every collective goes through. Host values (config hashes,
// metric sums, the run folder path) travel over MPI, or under torchrun over Gloo (a
// device backend forwards them to the host communicator it was given); tensor
// collectives go to a backend, one per file: `mpi` (CPU tensors, mpi_backend.cpp),
// `gloo` (CPU tensors under torchrun, gloo_backend.cpp) and, when the build has CUDA
// LibTorch and NCCL, `nccl`. Every blocking wait is watched: a collective that has not
// completed after `timeout_seconds` means a peer died or hung, and this rank logs that
// and ends the whole job (abort_job) instead of waiting forever.
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dist/dist.hpp"

namespace runner {

/// An operation in flight; wait() returns when the result is in place.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  virtual bool test() = 0;  ///< true once complete; drives progress
};

class Communicator {
 public:
  /// `host`: where host values go (null: MPI_COMM_WORLD, or this backend's own).
  Communicator(const DistInfo& info, double timeout_seconds, Communicator* host = nullptr);
  virtual ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  virtual std::string backend() const = 0;
  int rank() const { return info_.rank; }
  int world_size() const { return info_.world_size; }
  const DistInfo& info() const { return info_; }
  /// Seconds a collective may wait before the watchdog aborts the job (0: forever).
  void set_timeout(double seconds);
  double timeout() const { return timeout_; }

  // ---- tensor collectives (the backend's)
  /// Starts an in-place sum of one contiguous tensor across ranks. Every rank must start
  /// the same operations in the same order.
  virtual std::unique_ptr<Work> allreduce_async(const torch::Tensor& flat) = 0;
  /// Sums each tensor in place (blocking).
  void allreduce(const std::vector<torch::Tensor>& tensors);
  /// Copies `root`'s tensors to every rank, in place.
  virtual void broadcast(const std::vector<torch::Tensor>& tensors, int root) = 0;

  // ---- small host values (the host communicator's, else this one's host_* below)
  void barrier();
  std::vector<double> allreduce_sum(std::vector<double> values);
  double allreduce_max(double value);
  std::string broadcast(const std::string& value, int root);
  std::vector<std::string> allgather(const std::string& value);

  /// Ends every rank now (a peer is gone): MPI_Abort; a backend of another launcher
  /// exits this process, and its launcher stops the rest.
  [[noreturn]] virtual void abort_job(int code);

  /// While alive, the current thread is "in collective `op`": the watchdog aborts the
  /// job if it stays there longer than the timeout.
  class Watch {
   public:
    Watch(Communicator& c, const char* op);
    ~Watch();

   private:
    Communicator& c_;
  };

 protected:
  // Host values over MPI_COMM_WORLD; a backend that has no MPI world overrides them.
  virtual void host_barrier();
  virtual std::vector<double> host_allreduce(std::vector<double> values, bool max);
  virtual std::string host_broadcast(const std::string& value, int root);
  virtual std::vector<std::string> host_allgather(const std::string& value);

  DistInfo info_;
  Communicator* host_;

 private:
  void watchdog_loop();
  std::atomic<double> timeout_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  const char* op_ = nullptr;  ///< current watched operation, or null
  std::chrono::steady_clock::time_point op_since_;
  std::thread watchdog_;
};

struct CommOptions {
  std::string backend = "auto";  ///< auto | mpi | gloo | nccl
  double timeout_seconds = 60;
  bool cuda = false;             ///< tensors live on a CUDA device
  std::string where;             ///< the config location that chose the backend, for errors
  int device_index = -1;         ///< the CUDA device of this rank (nccl)
  Communicator* host = nullptr;  ///< where a device backend sends host values (torchrun: the gloo one)
};

/// Backends compiled into this build, e.g. {"mpi"} or {"mpi", "nccl"}.
std::vector<std::string> available_backends();

/// The backend `options.backend` means for this launch and device (auto: nccl for CUDA
/// tensors when built, else mpi, or gloo under torchrun). A backend missing from this
/// build, or one the launch or device cannot use, is a ConfigError at `where`.
std::string resolve_backend(const DistInfo& info, const CommOptions& options);

/// Makes the communicator `options.backend` names (auto: nccl for CUDA tensors when
/// built, else mpi, or gloo under torchrun). A backend missing from this build, or one
/// the launch cannot use, is a ConfigError at `where`.
std::unique_ptr<Communicator> make_communicator(const DistInfo& info, const CommOptions& options);

}  // namespace runner
