// The `mpi` backend: tensor collectives on host memory with MPI. Gradient buckets use
// non-blocking MPI_Iallreduce on a communicator of their own; Open MPI progresses
// them inside MPI calls, so the reducer calls test() from its autograd hooks.
#include "dist/backends.hpp"
#include "dist/mpi_check.hpp"
#include "runner/error.hpp"

namespace runner {
namespace {

MPI_Datatype mpi_type(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat32: return MPI_FLOAT;
    case torch::kFloat64: return MPI_DOUBLE;
    case torch::kInt64: return MPI_INT64_T;
    case torch::kInt32: return MPI_INT32_T;
    case torch::kUInt8: return MPI_UINT8_T;
    case torch::kBool: return MPI_C_BOOL;
    default:
      throw Error(std::string("dist.backend mpi: cannot reduce tensors of type ") + c10::toString(t.scalar_type()));
  }
}

void check_host(const torch::Tensor& t, const char* op) {
  if (!t.device().is_cpu())
    throw Error(std::string("dist.backend mpi: ") + op + " of a " + t.device().str() +
                " tensor; use dist.backend: nccl (or auto) for CUDA tensors");
}

// MPI counts are int: a tensor larger than that goes in several requests.
constexpr int64_t kMaxCount = int64_t(1) << 30;

class MpiWork : public Work {
 public:
  // No requests (world size 1): done already, without MPI (which a process started alone
  // does not initialise).
  MpiWork(Communicator& comm, std::vector<MPI_Request> requests)
      : comm_(comm), requests_(std::move(requests)), done_(requests_.empty()) {}
  // An abandoned request (an exception unwound past it) is left to MPI: freeing a
  // non-blocking collective's request is erroneous, and the job is failing anyway.
  void wait() override {
    if (done_) return;
    Communicator::Watch w(comm_, "allreduce of a gradient bucket");
    RUNNER_MPI_CHECK(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
    done_ = true;
  }
  bool test() override {
    if (done_) return true;
    int flag = 0;
    RUNNER_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &flag, MPI_STATUSES_IGNORE));
    done_ = flag != 0;
    return done_;
  }

 private:
  Communicator& comm_;
  std::vector<MPI_Request> requests_;
  bool done_;
};

class MpiCommunicator : public Communicator {
 public:
  // At world size 1 nothing goes over MPI (every collective returns at once), so a process
  // started alone never initialises it.
  MpiCommunicator(const DistInfo& info, double timeout) : Communicator(info, timeout) {
    if (info.world_size == 1) return;
    ensure_mpi();
    RUNNER_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
    RUNNER_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  }
  ~MpiCommunicator() override {
    if (comm_ != MPI_COMM_NULL && mpi_initialized()) MPI_Comm_free(&comm_);
  }
  std::string backend() const override { return "mpi"; }

  std::unique_ptr<Work> allreduce_async(const torch::Tensor& flat) override {
    check_host(flat, "allreduce");
    if (!flat.is_contiguous()) throw Error("dist.backend mpi: allreduce of a non-contiguous tensor");
    std::vector<MPI_Request> requests;
    if (info_.world_size > 1) {
      const MPI_Datatype type = mpi_type(flat);
      char* p = static_cast<char*>(flat.data_ptr());
      for (int64_t off = 0; off < flat.numel(); off += kMaxCount) {
        const int n = static_cast<int>(std::min(kMaxCount, flat.numel() - off));
        requests.emplace_back();
        RUNNER_MPI_CHECK(
            MPI_Iallreduce(MPI_IN_PLACE, p + off * flat.element_size(), n, type, MPI_SUM, comm_, &requests.back()));
      }
    }
    return std::make_unique<MpiWork>(*this, std::move(requests));
  }

  void broadcast(const std::vector<torch::Tensor>& tensors, int root) override {
    if (info_.world_size == 1) return;
    Watch w(*this, "broadcast of parameters");
    torch::NoGradGuard no_grad;
    for (const auto& tensor : tensors) {
      // Any dense layout (e.g. channels_last) goes as raw bytes; others via a copy.
      torch::Tensor t = tensor.is_non_overlapping_and_dense() ? tensor : tensor.contiguous();
      check_host(t, "broadcast");
      char* p = static_cast<char*>(t.data_ptr());
      const int64_t bytes = t.numel() * t.element_size();
      for (int64_t off = 0; off < bytes; off += kMaxCount) {
        const int n = static_cast<int>(std::min(kMaxCount, bytes - off));
        RUNNER_MPI_CHECK(MPI_Bcast(p + off, n, MPI_BYTE, root, comm_));
      }
      if (!t.is_same(tensor)) tensor.copy_(t);
    }
  }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

const BackendRegistrar registrar("mpi", [](const DistInfo& info, const CommOptions& o) {
  return std::make_unique<MpiCommunicator>(info, o.timeout_seconds);
});

}  // namespace
}  // namespace runner
