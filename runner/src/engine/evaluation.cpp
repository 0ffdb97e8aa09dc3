#include "engine/evaluation.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>

#include "data/prefetch.hpp"
#include "device/device.hpp"
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
  int64_t widest = 0;
  Engine evaluator([&](Engine&, Batch& batch) {
    const int64_t n = batch.size();
    if (n == 0) return;  // a rank's share of a small last batch
    // The smaller last batch: shapes met once an evaluation, not worth autotuning.
    std::optional<device::NoAutotune> untuned;
    if (n < widest) untuned.emplace();
    widest = std::max(widest, n);
    const TensorDict inputs = model_inputs(batch.data, 0, n, step.channels_last);
    TensorDict outputs;
    {
      AutocastScope autocast(step.amp, device);
      outputs = model.forward_batch(inputs);
    }
    outputs = to_float32(std::move(outputs));
    BatchOutput out;
    out.outputs = &outputs;
    out.batch = &inputs;
    out.samples = n;
    if (auto it = outputs.find("logits"); it != outputs.end()) out.logits = it->second;
    if (auto it = inputs.find("target"); it != inputs.end()) out.targets = it->second;
    out.loss = criterion.loss(outputs, inputs).item<double>();
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
