// Input-pipeline throughput without a model: the runner's loader (threads, decode,
// augmentation, collation into float32 batches) over a config's training set.
//   build/bin/runner_loader_bench CONFIG [key=value overrides...] [--batches N]
// Uses the config's dataflow exactly as `runner CONFIG` would (num_workers, batch_size,
// prefetch); one warm-up batch, then N batches (default: one epoch). Prints images/s.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "data/loader.hpp"
#include "engine/build.hpp"
#include "registry/registry.hpp"
#include "runner/error.hpp"

using namespace runner;

int main(int argc, char** argv) {
  try {
    if (argc < 2) {
      std::fprintf(stderr, "usage: %s CONFIG [key=value ...] [--batches N]\n", argv[0]);
      return 2;
    }
    std::vector<std::string> overrides;
    int64_t max_batches = -1;
    for (int i = 2; i < argc; ++i) {
      if (std::strcmp(argv[i], "--batches") == 0 && i + 1 < argc)
        max_batches = std::stoll(argv[++i]);
      else
        overrides.emplace_back(argv[i]);
    }
    Registry registry;
    registry.load(Registry::builtin_dir(), "built-in plugin folder");
    config::Node root = load_config(argv[1], overrides);
    for (const auto& p : config_plugin_paths(root)) registry.load(p, "plugins: in the config");
    const RunConfig config = resolve_config(root, argv[1], registry);
    const Components c = build_components(config, registry, DataflowContext{config.run.seed, 0, 1});
    const Dataflow& df = c.dataflow;
    LoaderOptions opt;
    opt.global_batch = df.batch_size;
    opt.shuffle = true;
    opt.drop_last = true;
    opt.num_workers = df.num_workers;
    opt.prefetch = df.prefetch;
    opt.seed = config.run.seed;
    opt.skip_bad_samples = df.skip_bad_samples;
    Loader loader(df.train, opt);
    const int64_t total =
        max_batches > 0 ? std::min(max_batches + 1, loader.batches_per_epoch()) : loader.batches_per_epoch();
    if (total < 2) throw Error("need at least 2 full batches (one is the warm-up)");
    loader.start_epoch(1);
    Batch batch;
    loader.next(batch);  // warm-up: threads started, files opened
    const auto t0 = std::chrono::steady_clock::now();
    int64_t images = 0;
    for (int64_t b = 1; b < total && loader.next(batch); ++b) images += batch.size();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::string shape;
    for (int64_t d = 1; d < batch.data.at("input").dim(); ++d)
      shape += (shape.empty() ? "" : "x") + std::to_string(batch.data.at("input").size(d));
    std::printf("loader: %s | %d worker thread(s), batch %ld, sample %s | %ld images in %.2f s = %.1f images/s\n",
                df.description.c_str(), df.num_workers, static_cast<long>(df.batch_size), shape.c_str(),
                static_cast<long>(images), s, images / s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
