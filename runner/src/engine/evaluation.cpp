#include "engine/evaluation.hpp"

#include <cstdio>

#include "data/prefetch.hpp"
#include "dist/sync.hpp"
#include "engine/engine.hpp"
#include "engine/precision.hpp"

namespace runner {

MetricValues evaluate(Model& model, Criterion& criterion, Loader& loader,
                      const std::vector<std::shared_ptr<Metric>>& metrics, const std::string& prefix,
                      Communicator& comm, const StepOptions& step, torch::Device device) {
  // Buffers (BatchNorm running statistics) are per rank while training; evaluation
  // and the final weights use rank 0's.
  broadcast_module(comm, model, /*parameters=*/false, /*buffers=*/true);
  torch::NoGradGuard no_grad;
  model.eval();
  for (auto& m : metrics) m->reset();
  Engine evaluator([&](Engine&, Batch& batch) {
    if (batch.input.size(0) == 0) return;  // a rank's share of a small last batch
    BatchOutput out;
    {
      AutocastScope autocast(step.amp, device);
      out.logits =
          model.forward(step.channels_last ? batch.input.contiguous(at::MemoryFormat::ChannelsLast) : batch.input);
    }
    out.logits = out.logits.to(torch::kFloat32);
    out.targets = batch.target;
    out.loss = criterion(out.logits, out.targets).item<double>();
    for (auto& m : metrics) m->update(out);
  });
  DevicePrefetcher batches(loader, device::make_transfer(device));
  evaluator.run(batches, 1);
  model.train();
  reduce_metrics(comm, metrics);
  MetricValues values;
  for (auto& m : metrics) values.emplace_back(prefix + "/" + m->name(), m->compute());
  return values;
}

std::string format_metrics(const MetricValues& values) {
  std::string s;
  char buf[96];
  for (const auto& [k, v] : values) {
    std::snprintf(buf, sizeof buf, "%s%s %.4f", s.empty() ? "" : ", ", k.c_str(), v);
    s += buf;
  }
  return s;
}

}  // namespace runner
