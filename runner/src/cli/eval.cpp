#include "cli/eval.hpp"

#include <cstdio>

#include "cli/run_weights.hpp"
#include "dist/dist.hpp"
#include "engine/build.hpp"
#include "engine/evaluation.hpp"
#include "runner/error.hpp"

namespace runner::cli {

void evaluate_run(const EvalRequest& r, const RunConfig& config, const Registry& registry, std::ostream& out) {
  if (r.split != "val" && r.split != "train") throw ConfigError("eval: --split: '" + r.split + "' is not val or train");
  const DistInfo single;
  const std::unique_ptr<Setup> s = build_setup(config, registry, single, device::Placement{});
  const std::string weights = weights_file(r.run_dir, r.checkpoint, config, "eval");
  load_weights(*s->c.model, weights, "eval");
  auto comm = make_communicator(single, CommOptions{"mpi", 60, false, "", -1});
  Loader& loader = r.split == "val" ? *s->val_loader : *s->train_loader;
  const MetricValues values =
      evaluate(*s->c.model, *s->c.criterion, loader, s->metrics, r.split, *comm, config.step, torch::kCPU);
  char line[256];
  for (const auto& [key, value] : values) {
    std::snprintf(line, sizeof line, "%s %.6f\n", key.c_str(), value);
    out << line;
  }
  out << "weights: " << weights << " (" << loader.dataset_size() << " samples)\n";
}

}  // namespace runner::cli
