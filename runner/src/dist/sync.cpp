#include "dist/sync.hpp"

#include <algorithm>
#include <cstdio>

#include "runner/error.hpp"
#include "runner/nn.hpp"
#include "util/strings.hpp"
#include "util/parameters.hpp"

namespace runner {
namespace {

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

std::string hex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<torch::Tensor> module_tensors(torch::nn::Module& module, bool parameters, bool buffers) {
  std::vector<torch::Tensor> out;
  if (parameters)
    for (auto& p : unique_parameters(module)) out.push_back(p);
  if (buffers)
    for (auto& b : module.buffers()) out.push_back(b);
  return out;
}

}  // namespace

void agree_on_failure(Communicator& comm, std::exception_ptr error) {
  if (comm.world_size() == 1) {
    if (error) std::rethrow_exception(error);
    return;
  }
  std::string mine;  // "<exit code><message>", empty when this rank is fine
  if (error) {
    try {
      std::rethrow_exception(error);
    } catch (const ConfigError& e) {
      mine = std::string("2") + e.what();
    } catch (const std::exception& e) {
      mine = std::string("1") + e.what();
    } catch (...) {
      mine = "1unknown exception";
    }
    mine = first_line(mine);
  }
  const std::vector<std::string> all = comm.allgather(mine);
  std::vector<int> failed;
  for (int r = 0; r < comm.world_size(); ++r)
    if (!all[r].empty()) failed.push_back(r);
  if (failed.empty()) return;
  const int code = all[failed.front()][0] - '0';
  // Group ranks by message: "msg" when every rank said it, else "rank 1: msg; ranks 2, 3: msg".
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (int r : failed) {
    const std::string msg = all[r].substr(1);
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == msg; });
    if (it == groups.end())
      groups.push_back({msg, {std::to_string(r)}});
    else
      it->second.push_back(std::to_string(r));
  }
  std::string text;
  if (groups.size() == 1 && static_cast<int>(failed.size()) == comm.world_size()) {
    text = groups[0].first;
  } else {
    for (const auto& [msg, ranks] : groups)
      text +=
          (text.empty() ? "" : "; ") + std::string(ranks.size() > 1 ? "ranks " : "rank ") + join(ranks) + ": " + msg;
  }
  throw AgreedFailure{code, text, comm.rank() == 0};
}

void check_same_config(Communicator& comm, const config::Node& resolved) {
  if (comm.world_size() == 1) return;
  const std::string text = config::emit(resolved);
  const std::string mine = hex(fnv1a(1469598103934665603ull, text.data(), text.size()));
  const std::vector<std::string> hashes = comm.allgather(mine);
  std::vector<int> differ;
  for (int r = 1; r < comm.world_size(); ++r)
    if (hashes[r] != hashes[0]) differ.push_back(r);
  if (differ.empty()) return;
  // Every rank learns rank 0's config and names what differs in its own.
  const std::string root_text = comm.broadcast(text, 0);
  std::string detail;
  if (comm.rank() != 0 && hashes[comm.rank()] != hashes[0]) {
    std::vector<std::string> keys;
    for (const auto& d :
         config::differing_keys(config::parse(root_text, "rank 0's config"), config::parse(text, "config")))
      keys.push_back(d.key + " (" + d.a + " vs " + d.b + ")");
    detail = join(keys);
  }
  const std::vector<std::string> details = comm.allgather(detail);
  std::string msg = "config differs between ranks (every rank must get the same config file and overrides): ";
  for (size_t i = 0; i < differ.size(); ++i) {
    const int r = differ[i];
    msg += (i ? "; " : "") + std::string("rank ") + std::to_string(r) +
           " vs rank 0: " + (details[r].empty() ? "hash " + hashes[r] + " vs " + hashes[0] : details[r]);
  }
  throw AgreedFailure{2, msg, comm.rank() == 0};
}

void broadcast_module(Communicator& comm, torch::nn::Module& module, bool parameters, bool buffers, int root) {
  if (comm.world_size() == 1) return;
  comm.broadcast(module_tensors(module, parameters, buffers), root);
}

void reduce_metrics(Communicator& comm, const std::vector<std::shared_ptr<Metric>>& metrics) {
  if (comm.world_size() == 1) return;
  std::vector<double> all;
  for (const auto& m : metrics) {
    auto s = m->state();
    all.insert(all.end(), s.begin(), s.end());
  }
  all = comm.allreduce_sum(std::move(all));
  size_t off = 0;
  for (const auto& m : metrics) {
    const size_t n = m->state().size();
    m->set_state(std::vector<double>(all.begin() + off, all.begin() + off + n));
    off += n;
  }
}

namespace {

Communicator* g_bn_comm = nullptr;

// y = sum over ranks of x; the gradient of a sum is the sum of the gradients.
struct AllReduceSum : torch::autograd::Function<AllReduceSum> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x) {
    torch::Tensor y = x.detach().clone().contiguous();
    g_bn_comm->allreduce({y});
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list grads) {
    torch::Tensor g = grads[0].contiguous().clone();
    g_bn_comm->allreduce({g});
    return {g};
  }
};

}  // namespace

std::unique_ptr<SyncBatchNormScope> enable_sync_batchnorm(Communicator& comm, torch::nn::Module& model,
                                                          const std::string& where) {
  int syncable = 0;
  std::vector<std::string> plain;
  for (const auto& item : model.named_modules()) {
    if (dynamic_cast<const runner::nn::BatchNorm2dImpl*>(item.value().get()))
      ++syncable;
    else if (item.value()->name().find("BatchNorm") != std::string::npos)
      plain.push_back(item.key());
  }
  if (!plain.empty())
    throw ConfigError(where + ": dist.sync_batchnorm: the model's BatchNorm layer(s) " + join(plain) +
                      " are not runner::nn::BatchNorm2d and would stay per rank; build the model with "
                      "runner::nn::BatchNorm2d (runner/nn.hpp) or set dist.sync_batchnorm: false");
  if (syncable == 0 || comm.world_size() == 1) return nullptr;
  return std::make_unique<SyncBatchNormScope>(comm);
}

SyncBatchNormScope::SyncBatchNormScope(Communicator& comm) {
  g_bn_comm = &comm;
  runner::nn::detail::set_batchnorm_sync([](const torch::Tensor& x) { return AllReduceSum::apply(x); });
}

SyncBatchNormScope::~SyncBatchNormScope() {
  runner::nn::detail::set_batchnorm_sync(nullptr);
  g_bn_comm = nullptr;
}

std::string module_hash(torch::nn::Module& module) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& t : module_tensors(module, true, true)) {
    const torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
    h = fnv1a(h, c.data_ptr(), c.numel() * c.element_size());
  }
  return hex(h);
}

std::string check_same_weights(Communicator& comm, torch::nn::Module& module) {
  const std::string mine = module_hash(module);
  const std::vector<std::string> all = comm.allgather(mine);
  std::vector<std::string> differ;
  for (int r = 1; r < comm.world_size(); ++r)
    if (all[r] != all[0]) differ.push_back(std::to_string(r));
  if (!differ.empty())
    throw AgreedFailure{1,
                        "ranks diverged: the weights of rank(s) " + join(differ) + " differ from rank 0's (hash " +
                            all[0] + "); a non-deterministic or rank-dependent plugin is the usual cause",
                        comm.rank() == 0};
  return all[0];
}

}  // namespace runner
