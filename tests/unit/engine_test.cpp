// The pure parts of the trainer: the Engine's events, best-K and early-stopping state,
// the checkpoint file codec, the option blocks, and which batches the step and evaluation
// let cuDNN autotune.
#include <torch/torch.h>

#include <filesystem>

#include "checkpoint/checkpoint.hpp"
#include "config/options.hpp"
#include "config/tree.hpp"
#include "data/loader.hpp"
#include "device/device.hpp"
#include "dist/communicator.hpp"
#include "engine/checkpointing.hpp"
#include "engine/engine.hpp"
#include "engine/evaluation.hpp"
#include "engine/step.hpp"
#include "engine/trackers.hpp"
#include "../../plugins/optimizers/fused.hpp"
#include "test_util.hpp"
#include "util/strings.hpp"

namespace {

class Samples : public runner::Dataset {
 public:
  explicit Samples(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> sample_shape() const override { return {1}; }
  void get(int64_t i, float* out, int64_t* t, runner::Rng&) const override {
    out[0] = static_cast<float>(i);
    *t = 0;
  }

 private:
  int64_t n_;
};

// 3 batches per epoch.
std::unique_ptr<runner::Loader> three_batches() {
  runner::LoaderOptions o;
  o.global_batch = 2;
  return std::make_unique<runner::Loader>(std::make_shared<Samples>(6), o);
}

const char* name(runner::Event e) {
  switch (e) {
    case runner::Event::Started: return "S";
    case runner::Event::EpochStarted: return "ES";
    case runner::Event::IterationStarted: return "IS";
    case runner::Event::IterationCompleted: return "IC";
    case runner::Event::EpochCompleted: return "EC";
    case runner::Event::Completed: return "C";
    case runner::Event::Exception: return "X";
  }
  return "?";
}

// Records every event as "<name><epoch>.<iteration>".
struct Recorder {
  std::vector<std::string> seen;
  void attach(runner::Engine& e, int64_t every = 1) {
    for (auto ev : {runner::Event::Started, runner::Event::EpochStarted, runner::Event::IterationStarted,
                    runner::Event::IterationCompleted, runner::Event::EpochCompleted, runner::Event::Completed,
                    runner::Event::Exception})
      e.on(
          ev,
          [this, ev](runner::Engine& en) {
            seen.push_back(std::string(name(ev)) + std::to_string(en.state.epoch) + "." +
                           std::to_string(en.state.iteration));
          },
          every);
  }
};

std::string joined(const std::vector<std::string>& v) { return runner::join(v, " "); }

// One process: every collective is the identity (evaluate() makes none at world size 1).
class OneRank : public runner::Communicator {
 public:
  OneRank() : Communicator(runner::DistInfo{}, /*timeout=*/0) {}
  std::string backend() const override { return "one"; }
  std::unique_ptr<runner::Work> allreduce_async(const torch::Tensor&) override { throw runner::Error("unused"); }
  void broadcast(const std::vector<torch::Tensor>&, int) override {}
};

// Records, at each forward, the batch's size and whether cuDNN would autotune it.
class AutotuneProbe : public runner::Model {
 public:
  AutotuneProbe() { w_ = register_parameter("w", torch::ones({1, 2})); }
  std::vector<std::pair<int64_t, bool>> seen;
  torch::Tensor forward(torch::Tensor x) override {
    seen.emplace_back(x.size(0), at::globalContext().benchmarkCuDNN());
    return x.matmul(w_);
  }

 private:
  torch::Tensor w_;
};

class SumLoss : public runner::Criterion {
 public:
  torch::Tensor loss(const runner::TensorDict& outputs, const runner::TensorDict&) override {
    return outputs.at("logits").sum();
  }
};

}  // namespace

TEST_SUITE("engine") {
  TEST_CASE("events fire in order, with every-N filters on iterations and epochs") {
    auto loader = three_batches();
    std::vector<int64_t> processed;
    runner::Engine e([&](runner::Engine& en, runner::Batch& b) {
      CHECK(b.data.at("input").size(0) == 2);
      processed.push_back(en.state.iteration);
    });
    Recorder all, every2;
    all.attach(e);
    every2.attach(e, 2);
    e.run(*loader, 2);
    CHECK(joined(all.seen) ==
          "S0.0 ES1.0 IS1.1 IC1.1 IS1.2 IC1.2 IS1.3 IC1.3 EC1.3 ES2.3 IS2.4 IC2.4 IS2.5 IC2.5 IS2.6 IC2.6 EC2.6 C2.6");
    // every 2: iterations 2, 4, 6 and epoch 2; Started and Completed are not filtered
    CHECK(joined(every2.seen) == "S0.0 IS1.2 IC1.2 ES2.3 IS2.4 IC2.4 IS2.6 IC2.6 EC2.6 C2.6");
    CHECK(processed == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
    CHECK(e.state.epoch_length == 3);
  }

  TEST_CASE("terminate stops after the current iteration; the epoch still completes") {
    auto loader = three_batches();
    runner::Engine e([](runner::Engine&, runner::Batch&) {});
    Recorder r;
    r.attach(e);
    e.on(runner::Event::IterationCompleted, [](runner::Engine& en) {
      if (en.state.iteration == 2) en.terminate();
    });
    e.run(*loader, 5);
    CHECK(joined(r.seen) == "S0.0 ES1.0 IS1.1 IC1.1 IS1.2 IC1.2 EC1.2 C1.2");
  }

  TEST_CASE("a restored state finishes its epoch from the next batch without EpochStarted") {
    auto loader = three_batches();
    std::vector<float> firsts;
    runner::Engine e(
        [&](runner::Engine&, runner::Batch& b) { firsts.push_back(b.data.at("input")[0][0].item<float>()); });
    e.state.epoch = 1;
    e.state.iteration = 2;
    e.state.epoch_iteration = 2;
    e.state.epoch_length = 3;
    Recorder r;
    r.attach(e);
    e.run(*loader, 2);
    CHECK(joined(r.seen) == "S1.2 IS1.3 IC1.3 EC1.3 ES2.3 IS2.4 IC2.4 IS2.5 IC2.5 IS2.6 IC2.6 EC2.6 C2.6");
    CHECK(firsts.size() == 4);
    CHECK(firsts[0] == 4.0f);  // batch 2 of epoch 1 (unshuffled: samples 4, 5)
  }

  TEST_CASE("an exception reaches the Exception handlers with the error, then propagates") {
    auto loader = three_batches();
    runner::Engine e([](runner::Engine& en, runner::Batch&) {
      if (en.state.iteration == 2) throw runner::Error("boom");
    });
    Recorder r;
    r.attach(e);
    std::string caught;
    e.on(runner::Event::Exception, [&](runner::Engine& en) {
      try {
        std::rethrow_exception(en.state.error);
      } catch (const std::exception& ex) {
        caught = ex.what();
      }
    });
    CHECK_THROWS_WITH_AS(e.run(*loader, 1), "boom", runner::Error);
    CHECK(caught == "boom");
    CHECK(joined(r.seen) == "S0.0 ES1.0 IS1.1 IC1.1 IS1.2 X1.2");
  }

  TEST_CASE("best-K and early stopping decide alike after a state round trip") {
    test::TempDir dir;
    torch::nn::Linear model(2, 1);
    runner::BestModels best(runner::ScoreRule{"val/accuracy", true}, 2);
    runner::EarlyStopping early(runner::ScoreRule{"val/loss", false}, 2, 0.01);
    std::string why;
    const std::vector<std::pair<double, double>> scores = {{0.5, 1.0}, {0.7, 0.9}, {0.6, 0.895}, {0.8, 0.95}};
    for (size_t i = 0; i < 2; ++i) {
      best.update(static_cast<int64_t>(i + 1), scores[i].first, *model, dir.path.string(), true);
      CHECK_FALSE(early.update(static_cast<int64_t>(i + 1), scores[i].second, &why));
    }
    runner::BestModels best2(runner::ScoreRule{"val/accuracy", true}, 2);
    runner::EarlyStopping early2(runner::ScoreRule{"val/loss", false}, 2, 0.01);
    best2.load(YAML::Load(YAML::Dump(best.state())));
    early2.load(YAML::Load(YAML::Dump(early.state())));
    for (auto* pair : {&best, &best2}) {
      const std::string f = pair->update(3, scores[2].first, *model, dir.path.string(), false);
      CHECK(f.find("epoch3") != std::string::npos);  // 0.6 beats 0.5: kept among the best 2
    }
    CHECK(YAML::Dump(best.state()) == YAML::Dump(best2.state()));
    // 0.895 and 0.95 do not beat 0.9 by min_delta 0.01: the second of them stops (patience 2)
    for (auto* e : {&early, &early2}) {
      CHECK_FALSE(e->update(3, scores[2].second, &why));
      CHECK(e->update(4, scores[3].second, &why));
    }
    CHECK(why.find("val/loss") != std::string::npos);
  }

  TEST_CASE("checkpoint files: CRC, truncation, listing and pruning") {
    const runner::checkpoint::Contents c{"epoch: 1\n", std::string("\0\1\2tensors", 10)};
    const std::string bytes = runner::checkpoint::encode(c);
    const auto back = runner::checkpoint::decode(bytes, "f");
    CHECK(back.meta == c.meta);
    CHECK(back.tensors == c.tensors);
    std::string flipped = bytes;
    flipped[bytes.size() / 2] ^= 1;
    CHECK_THROWS_WITH_AS(runner::checkpoint::decode(flipped, "f"), doctest::Contains("f: damaged checkpoint"),
                         runner::Error);
    for (size_t cut : {size_t(0), size_t(5), bytes.size() / 2, bytes.size() - 1})
      CHECK_THROWS_AS(runner::checkpoint::decode(bytes.substr(0, cut), "f"), runner::Error);

    test::TempDir dir;
    const std::string run = dir.path.string();
    for (int it : {30, 100, 60, 9})
      runner::checkpoint::write_atomic(
          run + "/checkpoints",
          "checkpoint_" + std::string(8 - std::to_string(it).size(), '0') + std::to_string(it) + ".ckpt", bytes);
    auto files = runner::checkpoint::list(run);
    REQUIRE(files.size() == 4);
    CHECK(std::filesystem::path(files.front()).filename() == "checkpoint_00000009.ckpt");
    CHECK(std::filesystem::path(files.back()).filename() == "checkpoint_00000100.ckpt");
    runner::checkpoint::prune(run, 2);
    files = runner::checkpoint::list(run);
    REQUIRE(files.size() == 2);
    CHECK(std::filesystem::path(files.front()).filename() == "checkpoint_00000060.ckpt");
    for (const auto& e : std::filesystem::directory_iterator(run + "/checkpoints"))
      CHECK(e.path().filename().string().find(".tmp") == std::string::npos);
  }

  TEST_CASE("option blocks: one declaration gives the schema, the defaults and the values") {
    const runner::Schema& s = runner::schema_of<runner::RunOptions>();
    CHECK(s.names() == std::vector<std::string>{"seed", "num_epochs", "max_time", "validate_every", "log_every_iters",
                                                "output_path", "threads", "plugins"});
    CHECK(s.find("num_epochs")->is_required);
    CHECK(s.find("seed")->default_value.as<int>() == 543);
    CHECK(s.find("max_time")->nullable);
    CHECK(s.find("threads")->type == runner::ParamType::Int);
    const runner::Schema& d = runner::schema_of<runner::DistOptions>();
    CHECK(d.find("bucket_mb")->type == runner::ParamType::Float);
    CHECK(d.find("backend")->choices == std::vector<std::string>{"auto", "mpi", "gloo", "nccl"});

    const auto node = runner::config::parse("backend: mpi\nbucket_mb: 2.5\nsync_batchnorm: true\ntimeout: 0\n", "t");
    const auto dist = runner::read_block<runner::DistOptions>(node);
    CHECK(dist.backend == "mpi");
    CHECK(dist.bucket_mb == 2.5);
    CHECK(dist.sync_batchnorm);
    CHECK(dist.timeout == 0);
  }

  TEST_CASE("resuming on another device kind: refused unless device may change") {
    runner::check_device_change("cpu", "cpu", {}, "ck");
    runner::check_device_change("cuda", "cuda", {}, "ck");
    CHECK_THROWS_WITH_AS(
        runner::check_device_change("cuda", "cpu", {}, "run/checkpoints/c.ckpt"),
        doctest::Contains("resume_from: run/checkpoints/c.ckpt: the checkpoint was written on cuda and "
                          "this run is on cpu;"),
        runner::ConfigError);
    CHECK_THROWS_WITH_AS(runner::check_device_change("cpu", "cuda", {"num_epochs"}, "c.ckpt"),
                         doctest::Contains("add device to resume_allow_changes"), runner::ConfigError);
    runner::check_device_change("cuda", "cpu", {"device"}, "c.ckpt");  // allowed: a warning only
  }

  TEST_CASE("max_time durations") {
    double s = 0;
    CHECK((runner::parse_duration("90s", &s) && s == 90));
    CHECK((runner::parse_duration("45m", &s) && s == 2700));
    CHECK((runner::parse_duration("4h", &s) && s == 14400));
    CHECK((runner::parse_duration("1d12h", &s) && s == 129600));
    CHECK((runner::parse_duration("1.5h", &s) && s == 5400));
    for (const char* bad : {"", "4", "4x", "h", "-5m", "1h30", "inf", "nanh", "4 h"})
      CHECK_FALSE(runner::parse_duration(bad, &s));
  }

  TEST_CASE("resume: which config changes a checkpoint refuses") {
    const auto parse = [](const std::string& text) { return runner::config::parse(text, "run.yaml"); };
    const runner::config::Node saved = parse("seed: 1\nlog_every_iters: 50\noptimizer: {name: sgd, lr: 0.1}\n");
    runner::config::Node current =
        parse("seed: 1\nlog_every_iters: 10\noptimizer: {name: sgd, lr: 0.1}\ncuda_graph: false\n");
    current.find("cuda_graph")->loc.file = "default";  // as config loading fills a schema default
    // A key a newer runner added, at its default, and a harmless key: nothing refused.
    CHECK(runner::refused_changes(saved, current, {}).empty());
    current.find("cuda_graph")->loc.file = "run.yaml";  // the same key set by the user
    CHECK(runner::refused_changes(saved, current, {}) == std::vector<std::string>{"cuda_graph (absent -> false)"});
    CHECK(runner::refused_changes(saved, current, {"cuda_graph"}).empty());
    current.find("optimizer")->find("lr")->scalar = "0.2";
    CHECK(runner::refused_changes(saved, current, {"cuda_graph"}) ==
          std::vector<std::string>{"optimizer.lr (0.1 -> 0.2)"});
    CHECK(runner::refused_changes(saved, current, {"cuda_graph", "optimizer"}).empty());
    // A key the checkpoint had that this run lacks is refused, default or not.
    CHECK(runner::refused_changes(current, saved, {"optimizer"}) ==
          std::vector<std::string>{"cuda_graph (false -> absent)"});
  }

  TEST_CASE("cuDNN autotuning: NoAutotune turns it off and back on; evaluation's smaller last batch is not tuned") {
    auto& ctx = at::globalContext();
    const bool before = ctx.benchmarkCuDNN();
    ctx.setBenchmarkCuDNN(true);  // what device: cuda sets without deterministic
    {
      runner::device::NoAutotune off;
      CHECK_FALSE(ctx.benchmarkCuDNN());
      {
        runner::device::NoAutotune nested;  // found it off: leaves it off
        CHECK_FALSE(ctx.benchmarkCuDNN());
      }
      CHECK_FALSE(ctx.benchmarkCuDNN());
    }
    CHECK(ctx.benchmarkCuDNN());

    runner::LoaderOptions o;
    o.global_batch = 2;
    runner::Loader loader(std::make_shared<Samples>(5), o);  // batches of 2, 2 and 1
    AutotuneProbe model;
    SumLoss loss;
    OneRank comm;
    runner::evaluate(model, loss, loader, {}, "val", comm, runner::StepOptions{}, torch::kCPU);
    const std::vector<std::pair<int64_t, bool>> expected{{2, true}, {2, true}, {1, false}};
    CHECK(model.seen == expected);
    CHECK(ctx.benchmarkCuDNN());
    ctx.setBenchmarkCuDNN(false);  // the CPU's mode: nothing to restore, nothing changes
    model.seen.clear();
    runner::evaluate(model, loss, loader, {}, "val", comm, runner::StepOptions{}, torch::kCPU);
    CHECK(model.seen == std::vector<std::pair<int64_t, bool>>{{2, false}, {2, false}, {1, false}});
    ctx.setBenchmarkCuDNN(before);
  }

  TEST_CASE("cuDNN autotuning: the training step does not tune an epoch's smaller last batch") {
    auto& ctx = at::globalContext();
    const bool before = ctx.benchmarkCuDNN();
    ctx.setBenchmarkCuDNN(true);
    auto model = std::make_shared<AutotuneProbe>();
    runner::Components c;
    c.dataflow.batch_size = 2;
    c.model = model;
    c.criterion = std::make_shared<SumLoss>();
    c.trainable = model->parameters();
    c.optimizer = std::make_unique<torch::optim::SGD>(c.trainable, torch::optim::SGDOptions(0.1));
    OneRank comm;
    runner::RunState run;
    run.comm = &comm;
    runner::TrainStep step(runner::StepOptions{}, torch::kCPU, c, /*reducer=*/nullptr, comm, run);
    runner::Engine engine([](runner::Engine&, runner::Batch&) {});
    for (int64_t n : {2, 2, 1, 2}) {
      runner::Batch b;
      b.data.emplace("input", torch::ones({n, 1}));
      b.global_size = n;
      step(engine, b);
    }
    const std::vector<std::pair<int64_t, bool>> expected{{2, true}, {2, true}, {1, false}, {2, true}};
    CHECK(model->seen == expected);
    CHECK(run.samples == 7);
    CHECK(model->parameters()[0].sum().item<double>() < 2.0);  // the steps stepped
    ctx.setBenchmarkCuDNN(before);
  }

  // The reasons need no GPU: the device is only a value here (tools/gpu/check.sh runs the graph).
  TEST_CASE("cuda_graph: what it refuses, one reason each, the first that applies") {
    std::vector<torch::Tensor> params{torch::zeros({3}, torch::requires_grad())};
    runner::plugins::FusedSGD fused(params, torch::optim::SGDOptions(0.1));
    runner::plugins::FusedAdamW fused_adamw(params, torch::optim::AdamWOptions(0.1));
    torch::optim::SGD plain(params, torch::optim::SGDOptions(0.1));
    const torch::Device gpu(torch::kCUDA, 0), cpu(torch::kCPU);
    runner::StepOptions o;
    o.cuda_graph = true;
    using runner::cuda_graph_unsupported;
    CHECK(cuda_graph_unsupported(o, fused, gpu, 1).empty());
    CHECK(cuda_graph_unsupported(o, fused_adamw, gpu, 1).empty());
    o.amp = "bf16";
    CHECK(cuda_graph_unsupported(o, fused, gpu, 1).empty());
    CHECK(cuda_graph_unsupported(o, plain, gpu, 1).rfind("the optimizer's step cannot be captured", 0) == 0);
    CHECK(cuda_graph_unsupported(o, fused, cpu, 1) == "needs a CUDA device; this run computes on the CPU");
    o.amp = "fp16";
    CHECK(cuda_graph_unsupported(o, fused, cpu, 1).rfind("not with amp: fp16", 0) == 0);
    o.grad_accumulation_steps = 4;
    CHECK(cuda_graph_unsupported(o, fused, gpu, 1) ==
          "not with grad_accumulation_steps: 4 (one forward and backward per step)");
    CHECK(cuda_graph_unsupported(o, plain, cpu, 2).rfind("one process only: this run has 2 ranks", 0) == 0);
  }

}  // TEST_SUITE
