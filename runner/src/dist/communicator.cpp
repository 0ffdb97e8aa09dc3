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

std::unique_ptr<Communicator> make_communicator(const DistInfo& info, const CommOptions& options) {
  std::string name = options.backend;
  if (name == "auto") name = options.cuda && backend_table().count("nccl") ? "nccl" : "mpi";
  auto it = backend_table().find(name);
  const std::string at = options.where.empty() ? std::string() : options.where + ": ";
  if (name == "nccl" && it != backend_table().end() && !options.cuda)
    throw ConfigError(at + "dist.backend: nccl all-reduces CUDA tensors and this run is on the CPU; use mpi or auto");
  if (it == backend_table().end())
    throw ConfigError((options.where.empty() ? std::string() : options.where + ": ") + "dist.backend: '" + name +
                      "' is not in this build (it has: " + join(available_backends()) +
                      (name == "nccl" ? "; nccl needs LibTorch with CUDA and NCCL at build time" : "") + ")");
  return it->second(info, options);
}

// ---------------------------------------------------------------- watchdog

Communicator::Communicator(const DistInfo& info, double timeout_seconds) : info_(info), timeout_(timeout_seconds) {
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
    MPI_Abort(MPI_COMM_WORLD, kExitWatchdog);
    _exit(kExitWatchdog);  // MPI_Abort does not return; this is belt and braces
  }
}

// ---------------------------------------------------------------- host values

void Communicator::allreduce(const std::vector<torch::Tensor>& tensors) {
  std::vector<std::unique_ptr<Work>> works;
  for (const auto& t : tensors) works.push_back(allreduce_async(t));
  for (auto& w : works) w->wait();
}

void Communicator::barrier() {
  if (info_.world_size == 1) return;
  Watch w(*this, "barrier");
  RUNNER_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
}

std::vector<double> Communicator::allreduce_sum(std::vector<double> values) {
  if (info_.world_size == 1 || values.empty()) return values;
  Watch w(*this, "allreduce of host values");
  RUNNER_MPI_CHECK(
      MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
  return values;
}

double Communicator::allreduce_max(double value) {
  if (info_.world_size == 1) return value;
  Watch w(*this, "allreduce of host values");
  RUNNER_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
  return value;
}

std::string Communicator::broadcast(const std::string& value, int root) {
  if (info_.world_size == 1) return value;
  Watch w(*this, "broadcast of host values");
  long long n = static_cast<long long>(value.size());
  RUNNER_MPI_CHECK(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, MPI_COMM_WORLD));
  std::string out = info_.rank == root ? value : std::string(static_cast<size_t>(n), '\0');
  RUNNER_MPI_CHECK(MPI_Bcast(out.data(), static_cast<int>(n), MPI_CHAR, root, MPI_COMM_WORLD));
  return out;
}

std::vector<std::string> Communicator::allgather(const std::string& value) {
  if (info_.world_size == 1) return {value};
  Watch w(*this, "allgather of host values");
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
