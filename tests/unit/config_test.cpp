// Config loading, _base_ inheritance, overrides and validation.
#include "config/config.hpp"
#include "test_util.hpp"
#include "util/strings.hpp"

using runner::config::Node;

TEST_SUITE("config") {
  TEST_CASE("did you mean: a typo's nearest spelling, another tool's name for the same key or value") {
    const std::vector<std::string> top = {"seed",      "num_epochs", "output_path", "device", "amp",
                                          "criterion", "scheduler",  "dataflow",    "model",  "optimizer"};
    CHECK(runner::closest_match("num_epoch", top) == "num_epochs");  // edit distance
    CHECK(runner::closest_match("epochs", top) == "num_epochs");
    CHECK(runner::closest_match("output_dir", top) == "output_path");  // distance 4: aliases
    CHECK(runner::closest_match("Output_Dir", top) == "output_path");
    CHECK(runner::closest_match("loss", top) == "criterion");
    CHECK(runner::closest_match("lr_scheduler", top) == "scheduler");
    CHECK(runner::closest_match("dataset", top) == "dataflow");
    CHECK(runner::closest_match("colour", top).empty());
    CHECK(runner::closest_match("gpu", {"auto", "cpu", "cuda"}) == "cuda");    // not the nearer 'cpu'
    CHECK(runner::closest_match("fp32", {"none", "bf16", "fp16"}) == "none");  // not the nearer 'fp16'
    CHECK(runner::closest_match("bfloat16", {"none", "bf16", "fp16"}) == "bf16");
    CHECK(runner::closest_match("learning_rate", {"lr", "momentum", "weight_decay"}) == "lr");
    // An alias whose name is not a candidate falls back to the other rules.
    CHECK(runner::closest_match("loss", {"lost", "gain"}) == "lost");
    CHECK(runner::did_you_mean("gpu", {"cpu", "cuda"}) == "; did you mean 'cuda'?");
  }

  TEST_CASE("_base_ chain merges deeply, the including file wins, paths are relative to it") {
    test::TempDir d;
    d.write("bases/a.yaml", "seed: 1\nnum_epochs: 2\noptimizer: {name: sgd, lr: 0.1, momentum: 0.9}\n");
    d.write("bases/b.yaml", "_base_: a.yaml\nnum_epochs: 3\n");
    const auto top = d.write("top.yaml", "_base_: [bases/b.yaml]\noptimizer: {lr: 0.5}\n");
    Node n = runner::config::load_file(top);
    CHECK(n.find("seed")->scalar == "1");
    CHECK(n.find("num_epochs")->scalar == "3");
    const Node* opt = n.find("optimizer");
    CHECK(opt->find("lr")->scalar == "0.5");
    CHECK(opt->find("momentum")->scalar == "0.9");
    CHECK(opt->find("name")->scalar == "sgd");
    CHECK(n.find("_base_") == nullptr);
    // Locations survive the merge: lr comes from top.yaml line 2.
    CHECK(opt->find("lr")->loc.file == top);
    CHECK(opt->find("lr")->loc.line == 2);
  }

  TEST_CASE("a block naming another component replaces the base block whole") {
    test::TempDir d;
    d.write("base.yaml", "model: {name: resnet8, width: 32}\n");
    const auto top = d.write("top.yaml", "_base_: base.yaml\nmodel: mlp\n");
    Node n = runner::config::load_file(top);
    CHECK(n.find("model")->find("name")->scalar == "mlp");
    CHECK(n.find("model")->find("width") == nullptr);
  }

  TEST_CASE("_base_ cycles and missing bases are errors naming the file") {
    test::TempDir d;
    d.write("a.yaml", "_base_: b.yaml\nseed: 1\n");
    d.write("b.yaml", "_base_: a.yaml\n");
    const std::string msg = test::config_error([&] { runner::config::load_file((d.path / "a.yaml").string()); });
    CHECK(msg.find("inheritance cycle") != std::string::npos);
    const auto m = d.write("m.yaml", "_base_: [nope.yaml]\n");
    CHECK(test::config_error([&] { runner::config::load_file(m); }).find("nope.yaml") != std::string::npos);
  }

  TEST_CASE("overrides parse values as YAML and create nested keys") {
    test::TempDir d;
    const auto f = d.write("c.yaml", "model: resnet8\noptimizer: {name: sgd, lr: 0.1}\n");
    Node n = runner::load_config(f, {"optimizer.lr=0.2", "scheduler.milestones=[[0,0],[1ep,0.1]]", "model.width=8"});
    CHECK(n.find("optimizer")->find("lr")->scalar == "0.2");
    const Node* ms = n.find("scheduler")->find("milestones");
    REQUIRE(ms->kind == Node::Kind::Seq);
    CHECK(ms->items.size() == 2);
    CHECK(ms->items[1].items[0].scalar == "1ep");
    CHECK(n.find("model")->find("name")->scalar == "resnet8");  // shorthand expanded before merging
    CHECK(n.find("model")->find("width")->scalar == "8");
    CHECK(n.find("optimizer")->find("lr")->loc.str() == "command line 'optimizer.lr=0.2'");
  }

  TEST_CASE("--params splits on ';'") {
    const auto parts = runner::config::split_params("num_epochs=3; seed=1;;");
    REQUIRE(parts.size() == 2);
    CHECK(parts[0] == "num_epochs=3");
    CHECK(parts[1] == "seed=1");
  }

  TEST_CASE("malformed overrides are errors") {
    Node root = Node::map_node();
    CHECK(test::config_error([&] { runner::config::apply_override(root, "novalue"); }).find("key.path=value") !=
          std::string::npos);
    CHECK(test::config_error([&] { runner::config::apply_override(root, "a..b=1"); }).find("not a valid key path") !=
          std::string::npos);
    CHECK(test::config_error([&] { runner::config::apply_override(root, "a=[1,"); }).find("not valid YAML") !=
          std::string::npos);
  }

  TEST_CASE("duplicate keys, empty files, non-maps and deep nesting are rejected") {
    CHECK(test::config_error([] { runner::config::parse("a: 1\nb: 2\na: 3\n", "f.yaml"); }) ==
          "f.yaml:3:1: a: duplicate key (first set at line 1)");
    test::TempDir d;
    const auto empty = d.write("empty.yaml", "# nothing\n");
    CHECK(test::config_error([&] { runner::config::load_file(empty); }).find("config file is empty") !=
          std::string::npos);
    const auto list = d.write("list.yaml", "- 1\n- 2\n");
    CHECK(test::config_error([&] { runner::config::load_file(list); }).find("expected a map") != std::string::npos);
    std::string deep;
    for (int i = 0; i < 100; ++i) deep += "{a: ";
    deep += "1";
    for (int i = 0; i < 100; ++i) deep += "}";
    CHECK(test::config_error([&] { runner::config::parse(deep, "deep.yaml"); }).find("nested more than") !=
          std::string::npos);
  }

  TEST_CASE("validation fills defaults and reports unknown keys with a suggestion") {
    const auto& reg = test::builtin_registry();
    test::TempDir d;
    const auto f =
        d.write("ok.yaml", "num_epochs: 2\ndataflow: {name: synthetic}\nmodel: mlp\noptimizer: {name: sgd, lr: 0.1}\n");
    runner::RunConfig rc = runner::resolve_config(runner::load_config(f, {}), f, reg);
    CHECK(rc.run.num_epochs == 2);
    CHECK(rc.run.seed == 543);
    CHECK(rc.component(runner::Kind::Optimizer).params.get<double>("momentum") == 0.0);
    CHECK(rc.component(runner::Kind::Criterion).name == "cross_entropy");
    CHECK(rc.component(runner::Kind::Scheduler).name == "constant");
    CHECK(rc.name == "ok");

    const auto bad = d.write(
        "bad.yaml", "num_epochs: 2\ndataflow: {name: synthetic}\nmodel: mlp\noptimizer: {name: sgd, lrr: 0.1}\n");
    CHECK(test::config_error([&] { runner::resolve_config(runner::load_config(bad, {}), bad, reg); }) ==
          bad +
              ":4:24: optimizer.lrr: unknown key for optimizer 'sgd'; did you mean 'lr'? "
              "(known keys: lr, momentum, dampening, nesterov, weight_decay, fused, name, no_decay)");
  }

  TEST_CASE("types, ranges and required keys are checked") {
    const auto& reg = test::builtin_registry();
    test::TempDir d;
    auto err = [&](const std::string& body) {
      const auto f = d.write("t.yaml", body);
      return test::config_error([&] { runner::resolve_config(runner::load_config(f, {}), f, reg); });
    };
    const std::string ok_rest = "dataflow: synthetic\nmodel: mlp\n";
    CHECK(err("num_epochs: 0\n" + ok_rest + "optimizer: {name: sgd, lr: 0.1}\n").find("num_epochs: must be >= 1") !=
          std::string::npos);
    CHECK(err("num_epochs: two\n" + ok_rest + "optimizer: {name: sgd, lr: 0.1}\n").find("expected int") !=
          std::string::npos);
    CHECK(err("num_epochs: 1\n" + ok_rest + "optimizer: {name: sgd, lr: -1}\n").find("optimizer.lr: must be >= 0") !=
          std::string::npos);
    CHECK(err("num_epochs: 1\n" + ok_rest + "optimizer: {name: sgd}\n").find("optimizer.lr: required key is missing") !=
          std::string::npos);
    CHECK(err("num_epochs: 1\n" + ok_rest + "optimizer: {name: sgd, lr: \"0.1\"}\n").find("expected a number") !=
          std::string::npos);
    CHECK(
        err("num_epochs: 1\n" + ok_rest + "optimizer: {name: sgd, lr: 0.1, nesterov: maybe}\n").find("expected bool") !=
        std::string::npos);
    CHECK(err("num_epochs: 1\n" + ok_rest + "optimizer: {name: sdg, lr: 0.1}\n") ==
          d.path.string() +
              "/t.yaml:4:19: optimizer.name: unknown optimizer 'sdg'; did you mean 'sgd'? (known: adam, adamw, sgd)");
    CHECK(
        err("num_epochs: 1\nmodel: mlp\noptimizer: {name: sgd, lr: 0.1}\n").find("dataflow: required key is missing") !=
        std::string::npos);
  }

}  // TEST_SUITE
