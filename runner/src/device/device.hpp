#pragma once
// Where a rank computes: `device: auto | cpu | cuda`, one GPU per rank (its local rank on
// the node, among the GPUs CUDA_VISIBLE_DEVICES leaves), the kernel flags that go with
// it, its memory, its random generator and the copy of batches onto it. Device-neutral
// here; the CUDA half lives in cuda.cpp (compiled only with CUDA), the CPU-only build's
// in no_cuda.cpp.
#include <torch/torch.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace runner::device {

struct Placement {
  torch::Device device{torch::kCPU};
  std::string name = "cpu";  ///< "cpu" or the GPU's name ("NVIDIA H100 80GB HBM3")
  int64_t memory_bytes = 0;  ///< the GPU's total memory (0 on the CPU)
  bool is_cuda() const { return device.is_cuda(); }
  /// "cpu", or "cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB)".
  std::string describe() const;
};

/// Resolves `device:` for the rank `local_rank` of `local_size` on its node. auto: CUDA
/// when a device is usable, else the CPU. cuda where none is usable, or with more ranks
/// on the node than visible GPUs: a ConfigError at `where` saying why.
Placement place(const std::string& want, int local_rank, int local_size, const std::string& where);

/// cuDNN autotuning on, or with `deterministic` the cuDNN/cuBLAS determinism flags
/// (CUBLAS_WORKSPACE_CONFIG=:4096:8 unless set); TF32 off unless `allow_tf32`. CUDA only.
void configure_kernels(const Placement& p, bool deterministic, bool allow_tf32);

/// While alive, cuDNN chooses the algorithms of convolution shapes it has not met by its
/// heuristics instead of timing them (autotuning, on unless `deterministic`), for a shape met
/// once an epoch, such as the epoch's smaller last batch: autotuning a new shape costs seconds
/// in bf16 on an H100 and pays back only over many steps. The choice is cached as an autotuned
/// one would be. Restores the mode when it ends; nothing to do where autotuning is off.
class NoAutotune {
 public:
  NoAutotune();
  ~NoAutotune();
  NoAutotune(const NoAutotune&) = delete;
  NoAutotune& operator=(const NoAutotune&) = delete;

 private:
  bool was_on_;
};

/// Peak memory this process used on the device (CUDA: the caching allocator's peak
/// allocation; CPU: the process's peak resident set), in bytes.
int64_t peak_memory_bytes(const Placement& p);

/// The device's random generator state ("" on the CPU), and its restore.
std::string rng_state(const Placement& p);
void set_rng_state(const Placement& p, const std::string& state);

/// Waits until every queued kernel of the device finished (a barrier before timing).
void synchronize(const Placement& p);
/// The device's attainable rates for `dtype`, in GFLOP/s, each the best of two rounds of about
/// 0.2 s on this rank's threads: square torch::mm (2048 on the CPU; 8192 on CUDA, with the
/// run's TF32 setting) and a 3x3 convolution in NHWC (256 channels at 28x28). The higher is
/// the yardstick `profile:`'s achieved GFLOP/s is divided by (the MFU): on this project's AMD
/// CPU, MKL's float32 GEMM takes an AVX2 path (216 GFLOP/s) while oneDNN's convolutions use
/// AVX-512 (522). tools/bench/peak_gflops.py measures the same from Python.
struct PeakRates {
  double matmul = 0, conv = 0;
  double best() const { return std::max(matmul, conv); }
};
PeakRates peak_gflops(const Placement& p, torch::ScalarType dtype);

/// Copies batches of several tensors onto the device. On CUDA each copy is issued
/// non-blocking on a side stream (from pinned host memory it overlaps the compute
/// stream's work); `ready` makes the compute stream wait for that copy before the step
/// uses the tensors. On the CPU both are no-ops.
class Transfer {
 public:
  using Token = std::shared_ptr<void>;
  virtual ~Transfer() = default;
  /// Starts moving each tensor (replaced by its device copy, still in flight).
  virtual Token start(const std::vector<torch::Tensor*>& tensors) = 0;
  /// Before the compute stream uses the tensors `start` returned `token` for.
  virtual void ready(const std::vector<torch::Tensor*>& tensors, const Token& token) = 0;
};
std::unique_ptr<Transfer> make_transfer(torch::Device device);

/// `cuda_graph: true`: one CUDA graph of the training step. While it lives, this thread's
/// current stream is a side stream of the device (a capture cannot use the default stream):
/// the warm-up steps, the capture, the replays and everything else the loop launches run on
/// it, in order. It first waits for the work queued before it; the previous stream waits for
/// it at the end. CUDA only: make_step_graph throws Error on the CPU.
class StepGraph {
 public:
  virtual ~StepGraph() = default;
  /// Records what `body` launches on this thread's stream (and the autograd threads' work for
  /// it) into the graph, with autocast's weight cache off; nothing runs. Throws Error with
  /// CUDA's reason when `body` does what a capture cannot (a host read, a synchronisation).
  virtual void capture(const std::function<void()>& body) = 0;
  /// Launches the captured work on the current stream.
  virtual void replay() = 0;
  virtual bool captured() const = 0;
};
std::unique_ptr<StepGraph> make_step_graph(const Placement& p);

namespace detail {
// The CUDA half (cuda.cpp / no_cuda.cpp).
Placement cuda_placement(int index);
void cuda_configure(int index, bool deterministic, bool allow_tf32);
int64_t cuda_peak_memory(int index);
std::string cuda_rng_state(int index);
void cuda_set_rng_state(int index, const std::string& state);
void cuda_synchronize(int index);
std::unique_ptr<Transfer> cuda_transfer(int index);
std::unique_ptr<StepGraph> cuda_step_graph(int index);
}  // namespace detail

}  // namespace runner::device
