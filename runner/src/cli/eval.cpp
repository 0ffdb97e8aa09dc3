#include "cli/eval.hpp"

#include <cstdio>
#include <iostream>

#include "cli/run_weights.hpp"
#include "dist/dist.hpp"
#include "engine/build.hpp"
#include "engine/evaluation.hpp"
#include "engine/precision.hpp"
#include "runner/error.hpp"

namespace runner::cli {

void evaluate_run(const EvalRequest& r, const RunConfig& config, const Registry& registry, std::ostream& out) {
  if (r.split != "val" && r.split != "train") throw ConfigError("eval: --split: '" + r.split + "' is not val or train");
  const device::Placement placement = run_placement(config, r.device, "eval", /*autocast=*/true, std::cerr);
  const DistInfo single;
  const std::unique_ptr<Setup> s = build_setup(config, registry, single, placement);
  const std::string weights = weights_file(r.run_dir, r.checkpoint, config, "eval");
  load_weights(*s->c.model, weights, "eval");
  if (config.step.channels_last) to_channels_last(*s->c.model);
  auto comm = make_communicator(single, CommOptions{"mpi", 60, false, "", -1});
  Loader& loader = r.split == "val" ? *s->val_loader : *s->train_loader;
  const MetricValues values =
      evaluate(*s->c.model, *s->c.criterion, loader, s->metrics, r.split, *comm, config.step, placement.device);
  char line[256];
  for (const auto& [key, value] : values) {
    std::snprintf(line, sizeof line, "%s %.6f\n", key.c_str(), value);
    out << line;
  }
  out << "weights: " << weights << " (" << loader.dataset_size() << " samples) on " << placement.describe() << "\n";
}

}  // namespace runner::cli
