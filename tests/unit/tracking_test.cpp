// The run folder's writers: CRC-32C of TensorBoard records, the metric history behind
// metrics.csv/report.html/compare, SVG charts, MLflow key rules, config flattening.
#include <fstream>

#include "test_util.hpp"
#include "tracking/history.hpp"
#include "tracking/html.hpp"
#include "tracking/metrics_log.hpp"
#include "tracking/mlflow.hpp"
#include "tracking/tensorboard.hpp"

using namespace runner::tracking;

TEST_SUITE("tracking") {
  TEST_CASE("CRC-32C check value and TFRecord masking") {
    const char* s = "123456789";
    CHECK(crc32c(s, 9) == 0xE3069283u);
    CHECK(crc32c("", 0) == 0u);
    const uint32_t c = crc32c(s, 9);
    CHECK(masked_crc32c(s, 9) == static_cast<uint32_t>(((c >> 15) | (c << 17)) + 0xa282ead8u));
  }

  TEST_CASE("metrics.jsonl round trip, csv columns, final and best") {
    test::TempDir d;
    const std::string path = d.path.string() + "/metrics.jsonl";
    {
      MetricsLog f(path);
      f.write(5, 1, {{"train/batch_loss", 2.5}, {"lr", 0.1}});
      f.write(10, 1, {{"val/accuracy", 0.5}, {"val/loss", 1.5}});
      f.write(15, 2, {{"train/batch_loss", 1.25}, {"lr", 0.05}});
      f.write(20, 2, {{"val/accuracy", 0.75}, {"val/loss", 1.75}});
      f.write(30, 3, {{"val/accuracy", 0.625}, {"val/loss", std::nan("")}});
    }
    History h = read_metrics(path);
    REQUIRE(h.rows().size() == 5);
    CHECK(h.keys() == std::vector<std::string>{"train/batch_loss", "lr", "val/accuracy", "val/loss"});
    CHECK(h.series("lr") == Series{{5, 0.1}, {15, 0.05}});
    CHECK(*h.last("val/accuracy") == 0.625);
    CHECK(h.best("val/accuracy")->first == 0.75);
    CHECK(h.best("val/accuracy")->second == 2);
    CHECK(h.best("val/loss")->first == 1.5);  // lower is better; NaN is never best
    CHECK(!h.best("val/top5"));
    const std::string csv = h.csv();
    CHECK(csv.substr(0, csv.find('\n')) == "iteration,epoch,train/batch_loss,lr,val/accuracy,val/loss");
    CHECK(csv.find("\n5,1,2.5,0.1,,\n") != std::string::npos);  // shortest exact text
    CHECK(csv.find("\n30,3,,,0.625,nan\n") != std::string::npos);
    d.write("bad.jsonl", "{\"iteration\": 1, \"a\": 1}\nnot json\n");
    CHECK_THROWS_WITH(read_metrics(d.path.string() + "/bad.jsonl"),
                      doctest::Contains("bad.jsonl:2: not a metrics record"));
  }

  TEST_CASE("which way is better") {
    CHECK(lower_is_better("val/loss"));
    CHECK(lower_is_better("train_eval/error_rate"));
    CHECK(!lower_is_better("val/accuracy"));
    CHECK(!lower_is_better("val/top5"));
  }

  TEST_CASE("svg_chart: one path per curve, gaps at non-finite values, long curves reduced") {
    Series s;
    for (int i = 1; i <= 5000; ++i) s.emplace_back(i, 1.0 / i);
    Series gap = {{1, 1}, {2, 2}, {3, std::nan("")}, {4, 1}, {5, 0}};
    const std::string svg = svg_chart("T <x>", {Curve{"long", s}, Curve{"gap", gap, true}}, "iteration");
    CHECK(svg.find("aria-label=\"T &lt;x&gt;\"") != std::string::npos);
    const auto count = [&](const std::string& needle) {
      size_t n = 0;
      for (size_t p = svg.find(needle); p != std::string::npos; p = svg.find(needle, p + 1)) ++n;
      return n;
    };
    CHECK(count("<path class=\"curve\"") == 2);
    CHECK(count("<circle") == 4);  // markers at the finite points of "gap"
    const size_t g = svg.find("data-label=\"gap\" d=\"");
    const std::string d = svg.substr(g, svg.find('"', g + 20) - g);
    CHECK(count(" L") < 1100);                 // 5000 points reduced to 1000
    CHECK(d.find(" M") != std::string::npos);  // the NaN breaks the line
    CHECK(svg_chart("empty", {}, "x").find("no data yet") != std::string::npos);
  }

  TEST_CASE("MLflow keys and config flattening") {
    CHECK(mlflow_key("val/accuracy") == "val/accuracy");
    CHECK(mlflow_key("a:b*c") == "a_b_c");
    CHECK(mlflow_key("/abs") == "abs");
    CHECK(mlflow_key("../up") == "_../up");
    auto flat = flatten(YAML::Load("a: 1\nb: {c: x, d: [1, 2]}\ne: ~\nf: {}\n"));
    CHECK(flat == std::vector<std::pair<std::string, std::string>>{
                      {"a", "1"}, {"b.c", "x"}, {"b.d", "[1, 2]"}, {"e", "null"}, {"f", "{}"}});
  }

}  // TEST_SUITE
