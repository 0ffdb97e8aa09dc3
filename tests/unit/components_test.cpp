// Every registered component builds from its defaults; schedulers and metrics compute
// the values they promise.
#include <cmath>

#include "config/config.hpp"
#include "engine/build.hpp"
#include "metrics/metrics.hpp"
#include "runner/idx.hpp"
#include "test_util.hpp"

namespace {

// Values for required parameters (the only keys a config must give). A new component
// with a required parameter must add a line here, or the test below fails.
const std::map<std::string, std::string> kRequired = {
    {"optimizer/sgd/lr", "0.1"},
    {"scheduler/piecewise_linear/milestones", "[[0, 0.0], [1ep, 0.1], [2ep, 0.0]]"},
    {"scheduler/step/step_size", "1ep"},
    {"scheduler/multistep/milestones", "[5, 1ep]"},
    {"dataflow/mnist/root", "@IDX@"},
};

// A tiny IDX data set in the MNIST layout.
std::string write_idx_set(const test::TempDir& d) {
  const auto root = d.path / "idx";
  std::filesystem::create_directories(root);
  for (const char* split : {"train", "t10k"}) {
    runner::IdxArray images{{20, 28, 28}, std::vector<uint8_t>(20 * 28 * 28)};
    for (size_t i = 0; i < images.data.size(); ++i) images.data[i] = static_cast<uint8_t>(i * 7);
    runner::IdxArray labels{{20}, std::vector<uint8_t>(20)};
    for (int i = 0; i < 20; ++i) labels.data[i] = static_cast<uint8_t>(i % 10);
    runner::write_idx((root / (std::string(split) + "-images-idx3-ubyte.gz")).string(), images, true);
    runner::write_idx((root / (std::string(split) + "-labels-idx1-ubyte")).string(), labels, false);
  }
  return root.string();
}

std::string block_for(const runner::Component& c, const std::string& idx_root) {
  std::string block = "{name: " + c.name;
  for (const auto& p : c.schema.params()) {
    if (!p.is_required) continue;
    auto it = kRequired.find(std::string(runner::kind_name(c.kind)) + "/" + c.name + "/" + p.name);
    if (it == kRequired.end()) {
      FAIL("no test value for required parameter " << runner::kind_name(c.kind) << "/" << c.name << "/" << p.name);
      continue;
    }
    std::string v = it->second;
    if (v == "@IDX@") v = idx_root;
    block += ", " + p.name + ": " + v;
  }
  return block + "}";
}

}  // namespace

TEST_SUITE("components") {

TEST_CASE("every registered component builds from its defaults and works") {
  const auto& reg = test::builtin_registry();
  test::TempDir d;
  const std::string idx_root = write_idx_set(d);
  const char* kinds[] = {"dataflow", "model", "optimizer", "criterion", "scheduler"};
  int built = 0;
  for (int k = 0; k < runner::kNumKinds; ++k) {
    for (const runner::Component* c : reg.components(static_cast<runner::Kind>(k))) {
      CAPTURE(c->name);
      std::map<std::string, std::string> blocks = {
          {"dataflow", "{name: synthetic, train_size: 64, val_size: 16, batch_size: 16}"},
          {"model", "mlp"},
          {"optimizer", "{name: sgd, lr: 0.1}"},
          {"criterion", "cross_entropy"},
          {"scheduler", "constant"}};
      blocks[kinds[k]] = block_for(*c, idx_root);
      std::string text = "num_epochs: 2\n";
      for (const auto& [key, b] : blocks) text += key + ": " + b + "\n";
      const auto f = d.write("cfg.yaml", text);
      runner::RunConfig rc = runner::resolve_config(runner::load_config(f, {}), f, reg);
      runner::Components built_c = runner::build_components(rc, reg, runner::DataflowContext{1, 0, 1});
      auto& df = built_c.dataflow;
      REQUIRE(df.train);
      const auto shape = df.train->sample_shape();
      int64_t numel = 1;
      for (auto s : shape) numel *= s;
      std::vector<float> sample(numel);
      int64_t target = -1;
      runner::Rng rng(1);
      df.train->get(0, sample.data(), &target, rng);
      CHECK(target >= 0);
      CHECK(target < df.num_classes);
      std::vector<int64_t> batch_shape = {2};
      batch_shape.insert(batch_shape.end(), shape.begin(), shape.end());
      torch::Tensor logits = built_c.model->forward(torch::randn(batch_shape));
      CHECK(logits.sizes().vec() == std::vector<int64_t>{2, df.num_classes});
      torch::Tensor loss = (*built_c.criterion)(logits, torch::tensor({0, 1}, torch::kInt64));
      loss.backward();
      built_c.optimizer->step();
      auto sched = runner::build_scheduler(rc, reg, runner::SchedulerContext{built_c.base_lr, 10, 20});
      CHECK(std::isfinite(sched->lr(0)));
      CHECK(std::isfinite(sched->lr(19)));
      ++built;
    }
  }
  CHECK(built == 14);
}

TEST_CASE("resnet8 has the architecture's 77,754 parameters") {
  const auto& reg = test::builtin_registry();
  auto factory = std::get<runner::ModelFactory>(reg.find(runner::Kind::Model, "resnet8")->factory);
  YAML::Node p;
  p["num_classes"] = 0;
  p["width"] = 16;
  auto model = factory(runner::Params(p, "model"), runner::ModelContext{{1, 28, 28}, 10});
  int64_t n = 0;
  for (const auto& t : model->parameters()) n += t.numel();
  CHECK(n == 77754);
}

TEST_CASE("schedulers give the documented learning rates") {
  const auto& reg = test::builtin_registry();
  auto make = [&](const std::string& name, const std::string& yaml, double base = 0.1) {
    auto f = std::get<runner::SchedulerFactory>(reg.find(runner::Kind::Scheduler, name)->factory);
    return f(runner::Params(YAML::Load(yaml), "scheduler"), runner::SchedulerContext{base, 10, 30});
  };
  auto pw = make("piecewise_linear", "{milestones: [[0, 0.0], [1ep, 0.1], [3ep, 0.0]]}");
  CHECK(pw->lr(0) == doctest::Approx(0.0));
  CHECK(pw->lr(5) == doctest::Approx(0.05));
  CHECK(pw->lr(10) == doctest::Approx(0.1));
  CHECK(pw->lr(20) == doctest::Approx(0.05));
  CHECK(pw->lr(30) == doctest::Approx(0.0));
  CHECK(pw->lr(99) == doctest::Approx(0.0));
  auto cos = make("cosine", "{warmup: 1ep, warmup_start_lr: 0.0, min_lr: 0.0}");
  CHECK(cos->lr(0) == doctest::Approx(0.0));
  CHECK(cos->lr(5) == doctest::Approx(0.05));
  CHECK(cos->lr(10) == doctest::Approx(0.1));
  CHECK(cos->lr(20) == doctest::Approx(0.05));
  CHECK(cos->lr(30) == doctest::Approx(0.0));
  auto step = make("step", "{step_size: 10, gamma: 0.5}");
  CHECK(step->lr(9) == doctest::Approx(0.1));
  CHECK(step->lr(10) == doctest::Approx(0.05));
  CHECK(step->lr(25) == doctest::Approx(0.025));
  auto ms = make("multistep", "{milestones: [5, 2ep], gamma: 0.1}");
  CHECK(ms->lr(4) == doctest::Approx(0.1));
  CHECK(ms->lr(5) == doctest::Approx(0.01));
  CHECK(ms->lr(20) == doctest::Approx(0.001));
  CHECK(make("constant", "{factor: 2.0}")->lr(7) == doctest::Approx(0.2));
  // Bad milestones are reported against the key.
  try {
    make("piecewise_linear", "{milestones: [[0, 0.0], [1epoch, 0.1]]}");
    FAIL("expected ParamError");
  } catch (const runner::ParamError& e) {
    CHECK(e.key() == "milestones");
    CHECK(std::string(e.what()).find("1epoch") != std::string::npos);
  }
  CHECK_THROWS_AS(make("piecewise_linear", "{milestones: [[2ep, 0.0], [1ep, 0.1]]}"), runner::ParamError);
}

TEST_CASE("accuracy, top-k and average loss") {
  runner::BatchOutput out;
  out.logits = torch::tensor({{0.1, 0.9, 0.0}, {0.8, 0.1, 0.1}, {0.2, 0.3, 0.5}, {0.5, 0.4, 0.1}});
  out.targets = torch::tensor({1, 0, 0, 1}, torch::kInt64);
  out.loss = 2.0;
  runner::TopKAccuracy acc(1), top2(2);
  runner::AverageLoss loss;
  for (runner::Metric* m : std::vector<runner::Metric*>{&acc, &top2, &loss}) m->update(out);
  CHECK(acc.compute() == doctest::Approx(0.5));
  CHECK(top2.compute() == doctest::Approx(0.75));  // sample 3's target is third of three
  out.loss = 1.0;
  out.logits = out.logits.narrow(0, 0, 2);
  out.targets = out.targets.narrow(0, 0, 2);
  loss.update(out);
  CHECK(loss.compute() == doctest::Approx((2.0 * 4 + 1.0 * 2) / 6));
  CHECK(acc.name() == "accuracy");
  CHECK(top2.name() == "top2");
  runner::RunningAverage ra(0.5);
  ra.update(4);
  CHECK(ra.update(2) == doctest::Approx(3));
}

}  // TEST_SUITE
