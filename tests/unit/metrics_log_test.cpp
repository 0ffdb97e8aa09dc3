// metrics.jsonl: the writer, the reader and the cut on resume agree on every key and
// every double, hostile keys and NaN/infinities included; metrics.csv quoting.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "test_util.hpp"
#include "tracking/history.hpp"
#include "tracking/metrics_log.hpp"
#include "util/strings.hpp"

using namespace runner::tracking;

namespace {

const std::vector<std::string> kHostileKeys = {"a\"b",
                                               "back\\slash",
                                               "new\nline",
                                               "cr\rtab\t",
                                               std::string("nul\0byte", 8),
                                               "\x01\x1f ctl",
                                               "ünïcødé/λ",
                                               "emoji \xF0\x9F\x98\x80",
                                               "a,b",
                                               "}",
                                               "{\"iteration\": 1, \"x",
                                               "\\u0041",
                                               "iteration",
                                               "epoch",
                                               "",
                                               "train/batch_loss"};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint64_t bits(double v) {
  uint64_t b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}

Values hostile_values(double base) {
  Values v;
  for (size_t i = 0; i < kHostileKeys.size(); ++i) v.emplace_back(kHostileKeys[i], base + 0.1 * static_cast<double>(i));
  return v;
}

}  // namespace

TEST_SUITE("tracking") {
  TEST_CASE("metrics.jsonl: the line format, with counters first and \": \" / \", \" separators") {
    CHECK(format_record(12, 1, {{"train/batch_loss", 0.5}, {"lr", 0.1}}) ==
          "{\"iteration\": 12, \"epoch\": 1, \"train/batch_loss\": 0.5, \"lr\": 0.1}\n");
    CHECK(format_record(30, 3, {{"val/accuracy", 1.0}, {"val/loss", 1e-05}}) ==
          "{\"iteration\": 30, \"epoch\": 3, \"val/accuracy\": 1, \"val/loss\": 1e-05}\n");
    CHECK(format_record(1, 1, {{"a\"b\\c\nd\x01", 2}}) ==
          "{\"iteration\": 1, \"epoch\": 1, \"a\\\"b\\\\c\\nd\\u0001\": 2}\n");
  }

  TEST_CASE("metrics.jsonl: hostile keys round trip through the writer and the reader") {
    test::TempDir d;
    const std::string path = metrics_log_path(d.path.string());
    {
      MetricsLog log(path);
      for (int i = 1; i <= 3; ++i) log.write(i * 5, i, hostile_values(i));
    }
    const std::string text = slurp(path);
    CHECK(std::count(text.begin(), text.end(), '\n') == 3);  // one line a record, whatever the keys
    const History h = read_metrics(path);
    REQUIRE(h.rows().size() == 3);
    for (int i = 1; i <= 3; ++i) {
      const Row& r = h.rows()[static_cast<size_t>(i - 1)];
      CHECK(r.iteration == i * 5);
      CHECK(r.epoch == i);
      CHECK(r.values == hostile_values(i));  // "iteration" and "epoch" as later keys are values
    }
    CHECK(h.keys() == kHostileKeys);
  }

  TEST_CASE("metrics.jsonl: JSON escapes are read (\\u with surrogate pairs, \\/), unknown ones kept") {
    Row r;
    REQUIRE(parse_record(R"({"iteration": 3, "epoch": 1, "\u00e9\ud83d\ude00\/x": 1, "old\key": 2})", &r));
    REQUIRE(r.values.size() == 2);
    CHECK(r.values[0].first == "\xC3\xA9\xF0\x9F\x98\x80/x");
    CHECK(r.values[1].first == "old\\key");  // older files wrote keys raw
  }

  TEST_CASE("metrics.jsonl: lines that are not records") {
    for (const char* bad : {"", "{", "{\"iteration\": 5, \"epoch\": 1, \"a\": 0.", "{\"iteration\": 5, \"a\": 1,}",
                            "{\"epoch\": 1}", "{\"iteration\": 2.5}", "{\"iteration\": NaN}", "{\"iteration\": 5} x",
                            "{\"iteration\": 5, \"a\": inf}", "{\"iteration\": 5, \"a\": 0x10}", "[1]",
                            "{\"iteration\": 5, \"a\": \"text\"}", "{\"iteration\": 5, \"a\": 1 \"b\": 2}",
                            "{\"iteration\": 5, \"a\\u12\": 1}", "{\"iteration\": 5, \"unterminated: 1}"}) {
      Row r;
      CHECK_MESSAGE(!parse_record(bad, &r), bad);
    }
    Row ok;
    CHECK(parse_record("  {\"iteration\":7,\"epoch\":2,\"a\":-1.5e3}\r", &ok));
    CHECK((ok.iteration == 7 && ok.epoch == 2 && ok.values == Values{{"a", -1500}}));
  }

  TEST_CASE("metrics.jsonl: every double reads back bit for bit") {
    std::mt19937_64 gen(20240615);
    std::vector<double> samples = {0.0,
                                   -0.0,
                                   0.1,
                                   1.0 / 3,
                                   1e-310,
                                   -4.9406564584124654e-324,
                                   2.2250738585072014e-308,
                                   1.7976931348623157e308,
                                   -1.7976931348623157e308,
                                   123456789012345678.0,
                                   1e21,
                                   1e-7};
    std::uniform_real_distribution<double> unit(-1, 1);
    for (int i = 0; i < 2000; ++i) samples.push_back(unit(gen) * std::pow(10.0, static_cast<int>(gen() % 40) - 20));
    while (samples.size() < 12000) {  // random bit patterns: every exponent, subnormals too
      const uint64_t b = gen();
      double v;
      std::memcpy(&v, &b, sizeof v);
      if (std::isfinite(v)) samples.push_back(v);
    }
    Values values;
    for (size_t i = 0; i < samples.size(); ++i) values.emplace_back("k" + std::to_string(i), samples[i]);
    Row r;
    REQUIRE(parse_record(format_record(1, 1, values), &r));
    REQUIRE(r.values.size() == samples.size());
    size_t exact = 0;
    for (size_t i = 0; i < samples.size(); ++i) exact += bits(r.values[i].second) == bits(samples[i]);
    CHECK(exact == samples.size());
    for (double v : samples) {  // shortest() alone reads back too (with strtod, as Python would)
      const std::string s = runner::shortest(v);
      CHECK(std::strtod(s.c_str(), nullptr) == v);
    }
    CHECK(runner::shortest(0.1) == "0.1");
    CHECK(runner::shortest(1.0) == "1");
    CHECK(runner::shortest(-0.0) == "-0");
  }

  TEST_CASE("metrics.jsonl: NaN, Infinity and -Infinity stay apart; null reads as NaN") {
    const std::string line = format_record(4, 1, {{"n", NAN}, {"p", INFINITY}, {"m", -INFINITY}, {"z", -NAN}});
    CHECK(line == "{\"iteration\": 4, \"epoch\": 1, \"n\": NaN, \"p\": Infinity, \"m\": -Infinity, \"z\": NaN}\n");
    Row r;
    REQUIRE(parse_record(line, &r));
    REQUIRE(r.values.size() == 4);
    CHECK(std::isnan(r.values[0].second));
    CHECK((std::isinf(r.values[1].second) && r.values[1].second > 0));
    CHECK((std::isinf(r.values[2].second) && r.values[2].second < 0));
    CHECK(std::isnan(r.values[3].second));
    Row old;
    REQUIRE(parse_record("{\"iteration\": 4, \"epoch\": 1, \"val/loss\": null}", &old));
    CHECK(std::isnan(old.values.at(0).second));
  }

  TEST_CASE("metrics.jsonl: the cut on resume keeps exactly the earlier lines, hostile keys and all") {
    test::TempDir d;
    const std::string path = metrics_log_path(d.path.string());
    std::string kept;
    {
      MetricsLog log(path);
      for (int it = 5; it <= 40; it += 5) {
        Values v = hostile_values(it);
        v.emplace_back("{\"iteration\": " + std::to_string(100 - it), -it);  // a key that looks like a counter
        log.write(it, it / 10, v);
        if (it <= 20) kept += format_record(it, it / 10, v);
      }
    }
    std::ofstream(path, std::ios::app) << "{\"iteration\": 45, \"epoch\": 4, \"a\\\"b\": 0.12";  // torn by a crash
    truncate_metrics(d.path.string(), 20);
    CHECK(slurp(path) == kept);
    CHECK(read_metrics(path).rows().size() == 4);
    truncate_metrics(d.path.string(), 0);
    CHECK(slurp(path).empty());
    const auto files =
        std::distance(std::filesystem::directory_iterator(d.path), std::filesystem::directory_iterator());
    CHECK(files == 1);  // no temporary file left beside it
  }

  TEST_CASE("metrics.csv: RFC 4180 quoting of keys, shortest values, nan/inf/-inf") {
    History h;
    h.add(5, 1, {{"a,b", 0.1}, {"say \"hi\"", 1e-05}, {"plain", NAN}});
    h.add(10, 1, {{"line\nbreak", INFINITY}, {"plain", -INFINITY}});
    const std::string csv = h.csv();
    CHECK(csv ==
          "iteration,epoch,\"a,b\",\"say \"\"hi\"\"\",plain,\"line\nbreak\"\n"
          "5,1,0.1,1e-05,nan,\n"
          "10,1,,,-inf,inf\n");
  }

  TEST_CASE("metrics.jsonl: Python's json module reads a written line") {
    const char* python = std::getenv("PYTHON");
    const std::string py = python && *python ? python : RUNNER_TEST_PYTHON;
    if (py.empty() || !std::filesystem::exists(py)) return;
    test::TempDir d;
    const std::string path = d.write("m.jsonl", format_record(3, 1,
                                                              {{"a\"b", 0.1},
                                                               {"back\\slash", 1},
                                                               {"new\nline", NAN},
                                                               {"inf", INFINITY},
                                                               {"-inf", -INFINITY},
                                                               {"\xC3\xA9", 1e-300}}));
    const std::string script = d.write("check.py", R"(import json, math, sys
r = json.loads(open(sys.argv[1], encoding="utf-8").read())
assert r["iteration"] == 3 and r["epoch"] == 1, r
assert r['a"b'] == 0.1 and r["back\\slash"] == 1 and r["\u00e9"] == 1e-300, r
assert math.isnan(r["new\nline"]) and r["inf"] == math.inf and r["-inf"] == -math.inf, r
)");
    CHECK(std::system(("'" + py + "' " + script + " " + path).c_str()) == 0);
  }
}
