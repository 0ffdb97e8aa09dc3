// Plugin loading and its error paths, with fixture libraries built by the test suite.
#include "test_util.hpp"

namespace {
std::string load_error(const std::string& sub) {
  runner::Registry r;
  r.load(runner::Registry::builtin_dir(), "built-in");
  return test::config_error([&] { r.load(std::string(FIXTURE_PLUGINS) + "/" + sub, "--plugin-path"); });
}
}  // namespace

TEST_SUITE("registry") {
  TEST_CASE("built-in plugins provide every component the foundation promises") {
    const auto& r = test::builtin_registry();
    using runner::Kind;
    CHECK(r.names(Kind::Dataflow) == std::vector<std::string>{"cifar10", "cifar100", "fashion_mnist", "imagefolder",
                                                              "mnist", "shapes", "synthetic", "tensors", "text"});
    CHECK(r.names(Kind::Model) == std::vector<std::string>{"gpt", "mlp", "resnet101", "resnet18", "resnet20",
                                                           "resnet34", "resnet50", "resnet56", "resnet8", "resnet9",
                                                           "unet"});
    CHECK(r.names(Kind::Optimizer) == std::vector<std::string>{"adam", "adamw", "sgd"});
    CHECK(r.names(Kind::Criterion) == std::vector<std::string>{"cross_entropy"});
    CHECK(r.names(Kind::Scheduler) ==
          std::vector<std::string>{"constant", "cosine", "multistep", "piecewise_linear", "step"});
    CHECK(r.names(Kind::Metric) == std::vector<std::string>{"bits_per_char", "mean_iou"});
    CHECK(r.libraries().size() == 4);
    CHECK(r.library_of(r.find(Kind::Model, "resnet8")).find("librunner_models.so") != std::string::npos);
  }

  TEST_CASE("loading the same folder twice is harmless") {
    runner::Registry r;
    r.load(runner::Registry::builtin_dir(), "a");
    r.load(runner::Registry::builtin_dir(), "b");
    CHECK(r.names(runner::Kind::Model).size() == 11);
  }

  TEST_CASE("a duplicate component names both libraries") {
    const std::string msg = load_error("dup");
    CHECK(msg.find("duplicate component optimizer/sgd: defined in ") == 0);
    CHECK(msg.find("librunner_optim.so and in ") != std::string::npos);
    CHECK(msg.find("libfixture_dup_sgd.so") != std::string::npos);
  }

  TEST_CASE("a plugin built for another API version is refused with what to do") {
    const std::string msg = load_error("bad_api");
    CHECK(msg.find("libfixture_bad_api.so") != std::string::npos);
    CHECK(msg.find("built for plugin API version 999, this runner has version 4; rebuild the plugin") !=
          std::string::npos);
  }

  TEST_CASE("a plugin built for the classification-only API (version 3) is refused") {
    const std::string msg = load_error("old_api");
    CHECK(msg.find("libfixture_old_api.so") != std::string::npos);
    CHECK(msg.find("built for plugin API version 3, this runner has version 4; rebuild the plugin") !=
          std::string::npos);
  }

  TEST_CASE("a library without the entry symbol is not a plugin") {
    const std::string msg = load_error("no_entry");
    CHECK(msg.find("libfixture_no_entry.so") != std::string::npos);
    CHECK(msg.find("not a runner plugin (no 'runner_plugin_entry' symbol") != std::string::npos);
  }

  TEST_CASE("a file that is not a library, and a missing path") {
    CHECK(load_error("not_elf").find("libgarbage.so (from --plugin-path): cannot load library") != std::string::npos);
    CHECK(load_error("missing").find("does not exist") != std::string::npos);
  }

}  // TEST_SUITE
