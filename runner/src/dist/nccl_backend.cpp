// The `nccl` backend (compiled only with CUDA): tensor collectives on the GPU with the NCCL
// LibTorch itself loads (torch::cuda::nccl, exported by libtorch_cuda), one communicator
// per job made from rank 0's unique id, which reaches the other ranks through a Bootstrap
// (MPI). Gradient buckets are all-reduced on a communication stream of their own: the
// compute stream's work so far is waited for with an event, and wait() makes the compute
// stream wait for the result, so neither backward nor the host ever blocks on them. Host
// values (stop requests, metric sums, paths) stay on MPI, as with the mpi backend; a rank
// that dies or hangs is caught there, or by the watchdog around the host's loss read.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/cuda/nccl.h>

#include <cstring>

#include "dist/backends.hpp"
#include "dist/bootstrap.hpp"
#include "runner/error.hpp"

namespace runner {
namespace {

namespace tnccl = torch::cuda::nccl;

void check_cuda(const torch::Tensor& t, int device, const char* op) {
  if (!t.is_cuda() || t.get_device() != device)
    throw Error(std::string("dist.backend nccl: ") + op + " of a " + t.device().str() +
                " tensor; this rank's device is cuda:" + std::to_string(device));
}

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<at::cuda::CUDAEvent> done, c10::DeviceIndex device)
      : done_(std::move(done)), device_(device) {}
  // Stream-ordered: the compute stream waits for the all-reduce; the host does not.
  void wait() override { done_->block(c10::cuda::getCurrentCUDAStream(device_)); }
  bool test() override { return done_->query(); }

 private:
  std::shared_ptr<at::cuda::CUDAEvent> done_;
  c10::DeviceIndex device_;
};

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const DistInfo& info, const CommOptions& o)
      : Communicator(info, o.timeout_seconds, o.host),
        device_(static_cast<c10::DeviceIndex>(o.device_index)),
        comm_stream_(c10::cuda::getStreamFromPool(/*isHighPriority=*/true, device_)) {
    if (o.device_index < 0) throw Error("dist.backend nccl: no CUDA device chosen for this rank");
    HostBootstrap bootstrap(*this);  // host values go to o.host when there is one
    tnccl::ncclUniqueId id{};
    if (info.rank == 0) tnccl::get_unique_id(id);
    const std::string bytes = bootstrap.broadcast(std::string(id.internal, sizeof id.internal), 0);
    std::memcpy(id.internal, bytes.data(), sizeof id.internal);
    c10::cuda::CUDAGuard guard(device_);
    Watch w(*this, "NCCL initialisation (every rank must reach it)");
    comm_ = tnccl::comm_init_rank(info.world_size, id, info.rank);
  }
  ~NcclCommunicator() override {
    if (comm_) tnccl::comm_destroy(comm_);
  }
  std::string backend() const override { return "nccl"; }

  std::unique_ptr<Work> allreduce_async(const torch::Tensor& flat) override {
    check_cuda(flat, device_, "allreduce");
    c10::cuda::CUDAGuard guard(device_);
    const c10::cuda::CUDAStream compute = c10::cuda::getCurrentCUDAStream(device_);
    at::cuda::CUDAEvent ready;
    ready.record(compute);  // the bucket's gradients are written on the compute stream
    ready.block(comm_stream_);
    std::vector<torch::Tensor> io{flat};
    tnccl::all_reduce(io, io, static_cast<int32_t>(tnccl::ncclRedOp::Sum), {comm_stream_}, {comm_});
    flat.record_stream(comm_stream_);
    auto done = std::make_shared<at::cuda::CUDAEvent>();
    done->record(comm_stream_);
    return std::make_unique<NcclWork>(std::move(done), device_);
  }

  void broadcast(const std::vector<torch::Tensor>& tensors, int root) override {
    if (info_.world_size == 1) return;
    if (root != 0) throw Error("dist.backend nccl: broadcasts come from rank 0");
    torch::NoGradGuard no_grad;
    c10::cuda::CUDAGuard guard(device_);
    for (const auto& tensor : tensors) {
      check_cuda(tensor, device_, "broadcast");
      torch::Tensor t = tensor.is_contiguous() ? tensor : tensor.contiguous();
      tnccl::broadcast({t}, {c10::cuda::getCurrentCUDAStream(device_)}, {comm_});  // on the compute stream
      if (!t.is_same(tensor)) tensor.copy_(t);
    }
  }

 private:
  c10::DeviceIndex device_;
  c10::cuda::CUDAStream comm_stream_;
  tnccl::ncclComm_t comm_ = nullptr;
};

const BackendRegistrar registrar("nccl", [](const DistInfo& info, const CommOptions& o) {
  return std::make_unique<NcclCommunicator>(info, o);
});

}  // namespace
}  // namespace runner
