// The CUDA build's half (compiled only when RUNNER_WITH_CUDA). It asks LibTorch's c10_cuda
// and ATen's CUDA context, never the driver API directly, so runner links no libcuda and
// starts without a driver.
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/CUDAGraph.h>
#include <ATen/core/CachingHostAllocator.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <cstring>

#include "device/cuda.hpp"
#include "device/device.hpp"
#include "runner/error.hpp"
#include "util/strings.hpp"

namespace runner::device {

namespace {
CudaStatus probe() {
  CudaStatus s;
  s.compiled = true;
  s.version = std::to_string(CUDART_VERSION / 1000) + "." + std::to_string(CUDART_VERSION % 1000 / 10);
  try {
    s.device_count = c10::cuda::device_count_ensure_non_zero();
    s.available = true;
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    s.why_not = what.find("no NVIDIA driver") != std::string::npos ? "no driver" : "no device";
  }
  return s;
}

c10::DeviceIndex idx(int index) { return static_cast<c10::DeviceIndex>(index); }

// Batches copied on a side stream; the compute stream waits on an event per batch.
class CudaTransfer : public Transfer {
 public:
  explicit CudaTransfer(int index)
      : index_(index), device_(torch::kCUDA, idx(index)), stream_(c10::cuda::getStreamFromPool(false, idx(index))) {}

  Token start(const std::vector<torch::Tensor*>& tensors) override {
    c10::cuda::CUDAStreamGuard guard(stream_);
    for (torch::Tensor* t : tensors)
      if (t->defined() && !t->is_cuda()) *t = t->to(device_, /*non_blocking=*/true);
    auto done = std::make_shared<at::cuda::CUDAEvent>();
    done->record(stream_);
    return done;
  }

  void ready(const std::vector<torch::Tensor*>& tensors, const Token& token) override {
    const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(idx(index_));
    if (token) static_cast<at::cuda::CUDAEvent*>(token.get())->block(compute);
    // Allocated on the side stream, used on the compute stream: the caching allocator
    // must not reuse the memory before the compute stream is done with it.
    for (torch::Tensor* t : tensors)
      if (t->defined() && t->is_cuda()) t->record_stream(compute);
  }

 private:
  int index_;
  torch::Device device_;
  c10::cuda::CUDAStream stream_;
};
// autocast's weight cache off while it lives, then as it was.
struct AutocastCacheOff {
  const bool was = at::autocast::is_autocast_cache_enabled();
  AutocastCacheOff() { at::autocast::set_autocast_cache_enabled(false); }
  ~AutocastCacheOff() { at::autocast::set_autocast_cache_enabled(was); }
  AutocastCacheOff(const AutocastCacheOff&) = delete;
  AutocastCacheOff& operator=(const AutocastCacheOff&) = delete;
};

// The step's graph on a side stream that this thread uses while the object lives. Captured in
// thread-local mode: the loader threads may allocate pinned memory meanwhile, and the autograd
// thread's kernels go to the captured stream all the same.
class CudaStepGraph : public StepGraph {
 public:
  explicit CudaStepGraph(int index)
      : before_(c10::cuda::getCurrentCUDAStream(idx(index))),
        side_(c10::cuda::getStreamFromPool(false, idx(index))),
        guard_(side_) {
    at::cuda::CUDAEvent queued;
    queued.record(before_);
    queued.block(side_);
  }
  ~CudaStepGraph() override {
    try {
      at::cuda::CUDAEvent done;
      done.record(side_);
      done.block(before_);
    } catch (...) {  // a destructor: the run is ending on an error already
    }
  }

  // A capture that fails leaves CUDAGraph's bookkeeping half done (only capture_end() ends the
  // allocators' routing to the graph's pool and the generator's capture): the stream leaves
  // capture mode and the allocators stop routing here, enough to report the error; the run
  // then stops (the generator would refuse further eager random numbers).
  void capture(const std::function<void()>& body) override {
    const AutocastCacheOff cache_off;  // cast weights would be captured once
    const c10::DeviceIndex device = side_.device_index();
    const c10::MempoolId_t pool = at::cuda::graph_pool_handle();
    try {
      // Dropout's random numbers: replays advance the generator's offset (a second registration,
      // where capture_begin makes one itself, changes nothing).
      graph_.register_generator_state(at::cuda::detail::getDefaultCUDAGenerator(device));
      graph_.capture_begin(pool, cudaStreamCaptureModeThreadLocal);
      try {
        body();
      } catch (...) {
        cudaGraph_t partial = nullptr;
        if (cudaStreamEndCapture(side_.stream(), &partial) == cudaSuccess && partial) cudaGraphDestroy(partial);
        (void)cudaGetLastError();
        c10::cuda::CUDACachingAllocator::endAllocateToPool(device, pool);
        at::getHostAllocator(at::kCUDA)->end_allocate_to_pool(pool);
        throw;
      }
      graph_.capture_end();
    } catch (const c10::Error& e) {
      throw Error(first_line(e.what_without_backtrace()));  // CUDA's advice lines after it: not here
    }
    captured_ = true;
  }
  void replay() override { graph_.replay(); }
  bool captured() const override { return captured_; }

 private:
  c10::cuda::CUDAStream before_, side_;
  c10::cuda::CUDAStreamGuard guard_;
  at::cuda::CUDAGraph graph_;
  bool captured_ = false;
};
}  // namespace

const CudaStatus& cuda_status() {
  static const CudaStatus status = probe();
  return status;
}

namespace detail {

Placement cuda_placement(int index) {
  // What Python's torch.cuda does on first use: the caching allocator, generators and hooks.
  // Without it the allocator knows no device yet, and resetPeakStats (cuda_configure) throws
  // "Invalid device argument" (seen on an H200 before any tensor was made).
  at::globalContext().lazyInitDevice(c10::DeviceType::CUDA);
  c10::cuda::set_device(idx(index));
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(idx(index));
  Placement p;
  p.device = torch::Device(torch::kCUDA, idx(index));
  p.name = prop->name;
  p.memory_bytes = static_cast<int64_t>(prop->totalGlobalMem);
  return p;
}

void cuda_configure(int index, bool deterministic, bool allow_tf32) {
  auto& ctx = at::globalContext();
  ctx.setBenchmarkCuDNN(!deterministic);  // autotuned convolution algorithms
  ctx.setDeterministicCuDNN(deterministic);
  ctx.setAllowTF32CuBLAS(allow_tf32);
  ctx.setAllowTF32CuDNN(allow_tf32);
  // cuBLAS reads this when its first handle is made: reproducible reductions.
  if (deterministic) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  c10::cuda::CUDACachingAllocator::resetPeakStats(idx(index));
}

int64_t cuda_peak_memory(int index) {
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(idx(index));
  return stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak;
}

std::string cuda_rng_state(int index) {
  at::Generator gen = at::cuda::detail::getDefaultCUDAGenerator(idx(index));
  std::lock_guard<std::mutex> lock(gen.mutex());
  const at::Tensor s = gen.get_state();
  return std::string(static_cast<const char*>(s.data_ptr()), static_cast<size_t>(s.numel()));
}

void cuda_set_rng_state(int index, const std::string& state) {
  at::Generator gen = at::cuda::detail::getDefaultCUDAGenerator(idx(index));
  at::Tensor t = torch::empty({static_cast<int64_t>(state.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), state.data(), state.size());
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(t);
}

void cuda_synchronize(int index) { c10::cuda::getCurrentCUDAStream(idx(index)).synchronize(); }

std::unique_ptr<Transfer> cuda_transfer(int index) { return std::make_unique<CudaTransfer>(index); }

std::unique_ptr<StepGraph> cuda_step_graph(int index) { return std::make_unique<CudaStepGraph>(index); }

}  // namespace detail
}  // namespace runner::device
