// The `gloo` backend: the ranks of a torchrun job. torchrun leaves every process an MPI
// singleton, so the ranks meet at the c10d TCPStore torchrun names (MASTER_ADDR and
// MASTER_PORT: its agent hosts it, or rank 0 does) and talk through LibTorch's own
// ProcessGroupGloo, the CPU backend of torch.distributed. It carries the host values of
// every communicator of such a job and, on the CPU, the tensor collectives too.
#include <unistd.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cstdlib>

#include "dist/backends.hpp"
#include "dist/launch.hpp"
#include "runner/error.hpp"
#include "util/strings.hpp"

namespace runner {
namespace {

std::chrono::milliseconds timeout_ms(double seconds) {  // 0: no limit (a day)
  return std::chrono::milliseconds(static_cast<int64_t>(seconds > 0 ? seconds * 1000 : 86400e3));
}

const char* getenv_or_null(const char* name) { return std::getenv(name); }

// One connection to torchrun's store per process, shared by every communicator.
c10::intrusive_ptr<c10d::Store> launch_store(const DistInfo& info, double timeout) {
  static c10::intrusive_ptr<c10d::Store> store;
  if (store) return store;
  const StoreAddress where = torchrun_store(getenv_or_null);
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(where.port);
  o.isServer = !where.agent_hosts_it && info.rank == 0;
  o.numWorkers = info.world_size;
  o.waitWorkers = false;
  o.multiTenant = true;
  o.timeout = timeout_ms(timeout);
  try {
    // torchrun's agent keeps its store across restarts: each attempt gets keys of its own,
    // or the new ranks would read the dead ranks' addresses.
    store = c10::make_intrusive<c10d::PrefixStore>("runner/attempt" + std::to_string(info.restart) + "/",
                                                   c10::make_intrusive<c10d::TCPStore>(where.host, o));
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(info.rank) + ": cannot reach torchrun's store at " + where.host + ":" +
                std::to_string(where.port) + ": " + first_line(e.what()));
  }
  return store;
}

// A failed Gloo operation (a peer closed its connection, a timeout) as one line.
template <class F>
auto gloo_call(const DistInfo& info, const char* op, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(info.rank) + ": " + op +
                " failed (a peer died or hung?): " + first_line(e.what()));
  }
}

class GlooWork : public Work {
 public:
  GlooWork(Communicator& comm, c10::intrusive_ptr<c10d::Work> work) : comm_(comm), work_(std::move(work)) {}
  void wait() override {
    if (!work_) return;
    Communicator::Watch w(comm_, "allreduce of a gradient bucket");
    gloo_call(comm_.info(), "allreduce of a gradient bucket", [&] { return work_->wait(); });
    work_.reset();
  }
  bool test() override { return !work_ || work_->isCompleted(); }

 private:
  Communicator& comm_;
  c10::intrusive_ptr<c10d::Work> work_;
};

class GlooCommunicator : public Communicator {
 public:
  GlooCommunicator(const DistInfo& info, double timeout) : Communicator(info, timeout) {
    static int made = 0;  // every rank makes its communicators in the same order
    auto store =
        c10::make_intrusive<c10d::PrefixStore>("pg" + std::to_string(made++) + "/", launch_store(info, timeout));
    auto options = c10d::ProcessGroupGloo::Options::create_default(timeout_ms(timeout));
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))  // torch.distributed's variable
      options->devices = {c10d::ProcessGroupGloo::createDeviceForInterface(ifname)};
    pg_ = gloo_call(info, "joining the other ranks over Gloo", [&] {
      return c10::make_intrusive<c10d::ProcessGroupGloo>(store, info.rank, info.world_size, options);
    });
  }
  std::string backend() const override { return "gloo"; }

  std::unique_ptr<Work> allreduce_async(const torch::Tensor& flat) override {
    check_host(flat, "allreduce");
    if (!flat.is_contiguous()) throw Error("dist.backend gloo: allreduce of a non-contiguous tensor");
    if (info_.world_size == 1) return std::make_unique<GlooWork>(*this, nullptr);
    std::vector<at::Tensor> tensors{flat};
    c10d::AllreduceOptions o;
    o.timeout = op_timeout();
    return std::make_unique<GlooWork>(*this, gloo_call(info_, "allreduce", [&] { return pg_->allreduce(tensors, o); }));
  }

  void broadcast(const std::vector<torch::Tensor>& tensors, int root) override {
    if (info_.world_size == 1) return;
    Watch w(*this, "broadcast of parameters");
    torch::NoGradGuard no_grad;
    for (const auto& tensor : tensors) {
      check_host(tensor, "broadcast");
      torch::Tensor t = tensor.is_contiguous() ? tensor : tensor.contiguous();
      run({t}, "broadcast of parameters", [&](std::vector<at::Tensor>& v) {
        c10d::BroadcastOptions o;
        o.rootRank = root;
        o.timeout = op_timeout();
        return pg_->broadcast(v, o);
      });
      if (!t.is_same(tensor)) tensor.copy_(t);
    }
  }

  [[noreturn]] void abort_job(int code) override { _exit(code); }  // torchrun's agent stops the rest

 protected:
  void host_barrier() override {
    c10d::BarrierOptions o;
    o.timeout = op_timeout();
    gloo_call(info_, "barrier", [&] { return pg_->barrier(o)->wait(); });
  }

  std::vector<double> host_allreduce(std::vector<double> values, bool max) override {
    auto t = torch::from_blob(values.data(), {static_cast<int64_t>(values.size())}, torch::kFloat64);
    run({t}, "allreduce of host values", [&](std::vector<at::Tensor>& v) {
      c10d::AllreduceOptions o;
      o.reduceOp = max ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
      o.timeout = op_timeout();
      return pg_->allreduce(v, o);
    });
    return values;
  }

  std::string host_broadcast(const std::string& value, int root) override {
    auto size = torch::full({1}, static_cast<int64_t>(value.size()), torch::kInt64);
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = op_timeout();
    run({size}, "broadcast of host values", [&](std::vector<at::Tensor>& v) { return pg_->broadcast(v, o); });
    std::string out = info_.rank == root ? value : std::string(static_cast<size_t>(size.item<int64_t>()), '\0');
    if (out.empty()) return out;
    auto bytes = torch::from_blob(out.data(), {static_cast<int64_t>(out.size())}, torch::kUInt8);
    run({bytes}, "broadcast of host values", [&](std::vector<at::Tensor>& v) { return pg_->broadcast(v, o); });
    return out;
  }

  std::vector<std::string> host_allgather(const std::string& value) override {
    const int n = info_.world_size;
    auto sizes = gather({torch::full({1}, static_cast<int64_t>(value.size()), torch::kInt64)});
    int64_t longest = 1;
    for (const auto& s : sizes) longest = std::max(longest, s.item<int64_t>());
    auto mine = torch::zeros({longest}, torch::kUInt8);
    std::memcpy(mine.data_ptr(), value.data(), value.size());
    auto all = gather({mine});
    std::vector<std::string> out;
    for (int r = 0; r < n; ++r)
      out.emplace_back(static_cast<const char*>(all[r].data_ptr()), static_cast<size_t>(sizes[r].item<int64_t>()));
    return out;
  }

 private:
  static void check_host(const torch::Tensor& t, const char* op) {
    if (!t.device().is_cpu())
      throw Error(std::string("dist.backend gloo: ") + op + " of a " + t.device().str() +
                  " tensor; use dist.backend: nccl (or auto) for CUDA tensors");
  }

  // Gloo's own limit for one operation: dist.timeout, as the watchdog's.
  std::chrono::milliseconds op_timeout() const { return timeout_ms(timeout()); }

  template <class F>
  void run(std::vector<at::Tensor> tensors, const char* op, F&& start) {
    gloo_call(info_, op, [&] { return start(tensors)->wait(); });
  }

  std::vector<at::Tensor> gather(const at::Tensor& mine) {
    std::vector<std::vector<at::Tensor>> outputs(1);
    for (int r = 0; r < info_.world_size; ++r) outputs[0].push_back(torch::empty_like(mine));
    std::vector<at::Tensor> inputs{mine};
    c10d::AllgatherOptions o;
    o.timeout = op_timeout();
    gloo_call(info_, "allgather of host values", [&] { return pg_->allgather(outputs, inputs, o)->wait(); });
    return outputs[0];
  }

  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg_;
};

const BackendRegistrar registrar("gloo", [](const DistInfo& info, const CommOptions& o) {
  return std::make_unique<GlooCommunicator>(info, o.timeout_seconds);
});

}  // namespace
}  // namespace runner
