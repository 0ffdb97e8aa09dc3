#include "dist/communicator.hpp"

#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>

#include "dist/backends.hpp"
#include "dist/mpi_check.hpp"
#include "logging/log.hpp"
#include "runner/error.hpp"
#include "util/strings.hpp"

namespace runner {

// ---------------------------------------------------------------- backend table

std::map<std::string, BackendFactory>& backend_table() {
  static std::map<std::string, BackendFactory> table;
  return table;
}

BackendRegistrar::BackendRegistrar(const char* name, BackendFactory factory) {
  backend_table()[name] = std::move(factory);
}

std::vector<std::string> available_backends() {
  std::vector<std::string> names;
  for (const auto& [name, f] : backend_table()) names.push_back(name);
  return names;
}

std::string resolve_backend(const DistInfo& info, const CommOptions& options) {
  std::string name = options.backend;
  const bool torchrun = info.launcher == "torchrun";
  const std::string host_backend = torchrun ? "gloo" : "mpi";
  if (name == "auto") name = options.cuda && backend_table().count("nccl") ? "nccl" : host_backend;
  const bool built = backend_table().count(name) > 0;
  const std::string at = options.where.empty() ? std::string() : options.where + ": ";
  if (!built)
    throw ConfigError(at + "dist.backend: '" + name + "' is not in this build (it has: " + join(available_backends()) +
                      (name == "nccl" ? "; nccl needs LibTorch with CUDA and NCCL at build time" : "") + ")");
  if (name == "nccl" && !options.cuda)
    throw ConfigError(at + "dist.backend: nccl all-reduces CUDA tensors and this run is on the CPU; use " +
                      host_backend + " or auto");
  if (name != "nccl" && options.cuda && info.world_size > 1)
    throw ConfigError(at + "dist.backend: " + name +
                      " all-reduces host tensors and this run is on CUDA; use nccl or auto");
  if (name == "mpi" && torchrun)
    throw ConfigError(at +
                      "dist.backend: mpi needs an MPI launch (mpirun, srun --mpi=pmix) and torchrun started "
                      "this job; use gloo or auto");
  if (name == "gloo" && !torchrun)
    throw ConfigError(at +
                      "dist.backend: gloo joins torchrun's store and this job was not started by torchrun; "
                      "use mpi or auto (or launch with torchrun)");
  return name;
}

std::unique_ptr<Communicator> make_communicator(const DistInfo& info, const CommOptions& options) {
  return backend_table().at(resolve_backend(info, options))(info, options);
}

// ---------------------------------------------------------------- watchdog

Communicator::Communicator(const DistInfo& info, double timeout_seconds, Communicator* host)
    : info_(info), host_(host), timeout_(timeout_seconds) {
  if (info_.world_size > 1) watchdog_ = std::thread([this] { watchdog_loop(); });
}

void Communicator::set_timeout(double seconds) { timeout_ = seconds; }

Communicator::~Communicator() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (watchdog_.joinable()) watchdog_.join();
}

Communicator::Watch::Watch(Communicator& c, const char* op) : c_(c) {
  std::lock_guard<std::mutex> lock(c_.mu_);
  c_.op_ = op;
  c_.op_since_ = std::chrono::steady_clock::now();
}

Communicator::Watch::~Watch() {
  std::lock_guard<std::mutex> lock(c_.mu_);
  c_.op_ = nullptr;
}

void Communicator::watchdog_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    const double limit = timeout_;
    cv_.wait_for(lock, std::chrono::milliseconds(limit > 0 && limit < 10 ? 100 : 1000));
    if (stop_ || !op_ || limit <= 0) continue;
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - op_since_).count();
    if (waited < limit) continue;
    const std::string op = op_;
    lock.unlock();
    char msg[512];
    std::snprintf(msg, sizeof msg,
                  "rank %d: %s did not complete within %.0f s (dist.timeout): another rank failed, hung or was "
                  "killed; aborting all %d ranks",
                  info_.rank, op.c_str(), limit, info_.world_size);
    log::error(msg);
    abort_job(kExitWatchdog);
  }
}

void Communicator::abort_job(int code) {
  if (host_) host_->abort_job(code);
  if (mpi_initialized()) MPI_Abort(MPI_COMM_WORLD, code);
  _exit(code);  // MPI_Abort does not return; this is belt and braces
}

// ---------------------------------------------------------------- host values

void Communicator::allreduce(const std::vector<torch::Tensor>& tensors) {
  std::vector<std::unique_ptr<Work>> works;
  for (const auto& t : tensors) works.push_back(allreduce_async(t));
  for (auto& w : works) w->wait();
}

void Communicator::barrier() {
  if (info_.world_size == 1) return;
  if (host_) return host_->barrier();
  Watch w(*this, "barrier");
  host_barrier();
}

std::vector<double> Communicator::allreduce_sum(std::vector<double> values) {
  if (info_.world_size == 1 || values.empty()) return values;
  if (host_) return host_->allreduce_sum(std::move(values));
  Watch w(*this, "allreduce of host values");
  return host_allreduce(std::move(values), false);
}

double Communicator::allreduce_max(double value) {
  if (info_.world_size == 1) return value;
  if (host_) return host_->allreduce_max(value);
  Watch w(*this, "allreduce of host values");
  return host_allreduce({value}, true)[0];
}

std::string Communicator::broadcast(const std::string& value, int root) {
  if (info_.world_size == 1) return value;
  if (host_) return host_->broadcast(value, root);
  Watch w(*this, "broadcast of host values");
  return host_broadcast(value, root);
}

std::vector<std::string> Communicator::allgather(const std::string& value) {
  if (info_.world_size == 1) return {value};
  if (host_) return host_->allgather(value);
  Watch w(*this, "allgather of host values");
  return host_allgather(value);
}

// ---------------------------------------------------------------- host values over MPI

void Communicator::host_barrier() { RUNNER_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }

std::vector<double> Communicator::host_allreduce(std::vector<double> values, bool max) {
  RUNNER_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE,
                                 max ? MPI_MAX : MPI_SUM, MPI_COMM_WORLD));
  return values;
}

std::string Communicator::host_broadcast(const std::string& value, int root) {
  long long n = static_cast<long long>(value.size());
  RUNNER_MPI_CHECK(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD));
  std::string out = info_.rank == root ? value : std::string(static_cast<size_t>(n), '\0');
  RUNNER_MPI_CHECK(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD));
  return out;
}

std::vector<std::string> Communicator::host_allgather(const std::string& value) {
  const int n = static_cast<int>(value.size());
  std::vector<int> sizes(info_.world_size), offsets(info_.world_size);
  RUNNER_MPI_CHECK(MPI_Allgather(&n, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD));
  int total = 0;
  for (int r = 0; r < info_.world_size; ++r) offsets[r] = total, total += sizes[r];
  std::string all(static_cast<size_t>(total), '\0');
  RUNNER_MPI_CHECK(
      MPI_Allgatherv(value.data(), n, MPI_CHAR, all.data(), sizes.data(), offsets.data(), MPI_CHAR, MPI_COMM_WORLD));
  std::vector<std::string> out;
  for (int r = 0; r < info_.world_size; ++r) out.push_back(all.substr(offsets[r], sizes[r]));
  return out;
}

}  // namespace runner
