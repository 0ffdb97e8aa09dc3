#include "tracking/compare.hpp"

#include <algorithm>
#include <filesystem>
#include <map>

#include "runner/error.hpp"
#include "tracking/history.hpp"
#include "tracking/html.hpp"
#include "tracking/metrics_log.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;

namespace runner::tracking {
namespace {

using Table = std::vector<std::pair<std::string, std::vector<std::string>>>;

void print_table(std::ostream& out, const std::string& first, const Table& rows, size_t n_runs) {
  auto clip = [](std::string s) {
    if (s.size() > 36) s = s.substr(0, 33) + "...";
    return s;
  };
  std::vector<size_t> width(n_runs + 1, 0);
  width[0] = first.size();
  for (size_t i = 0; i < n_runs; ++i) width[i + 1] = std::to_string(i + 1).size() + 1;
  for (const auto& [k, vals] : rows) {
    width[0] = std::max(width[0], k.size());
    for (size_t i = 0; i < n_runs; ++i) width[i + 1] = std::max(width[i + 1], clip(vals[i]).size());
  }
  auto cell = [](std::string s, size_t w) {
    s.resize(std::max(w, s.size()), ' ');
    return s;
  };
  out << cell(first, width[0]);
  for (size_t i = 0; i < n_runs; ++i) out << "  " << cell("#" + std::to_string(i + 1), width[i + 1]);
  out << "\n";
  for (const auto& [k, vals] : rows) {
    out << cell(k, width[0]);
    for (size_t i = 0; i < n_runs; ++i) out << "  " << cell(clip(vals[i]), width[i + 1]);
    out << "\n";
  }
}

}  // namespace

void compare_runs(const std::vector<std::string>& run_dirs, const std::string& html_path, std::ostream& out) {
  if (run_dirs.size() < 2) throw ConfigError("usage: runner compare RUN_DIR RUN_DIR ... [--output compare.html]");
  std::vector<ComparedRun> runs;
  std::vector<std::map<std::string, std::string>> configs, summaries;
  std::vector<std::string> config_keys;  // union, first seen first
  for (const auto& dir : run_dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw ConfigError(dir + ": not a folder (expected a run folder)");
    for (const char* f : {"config.yaml", "metrics.jsonl"})
      if (!fs::exists(fs::path(dir) / f, ec))
        throw ConfigError(dir + ": not a run folder (it has no " + f + ")");
    ComparedRun r;
    r.name = fs::path(dir).lexically_normal().filename().string();
    if (r.name.empty() || r.name == ".") r.name = fs::path(dir).lexically_normal().parent_path().filename().string();
    r.history = read_metrics(metrics_log_path(dir));
    std::map<std::string, std::string> cfg;
    try {
      for (auto& [k, v] : flatten(YAML::LoadFile((fs::path(dir) / "config.yaml").string()))) {
        if (std::find(config_keys.begin(), config_keys.end(), k) == config_keys.end()) config_keys.push_back(k);
        cfg[k] = v;
      }
    } catch (const YAML::Exception& e) {
      throw ConfigError((fs::path(dir) / "config.yaml").string() + ": not readable YAML: " + e.what());
    }
    std::map<std::string, std::string> summary;
    if (fs::exists(fs::path(dir) / "summary.yaml", ec)) {
      try {
        for (auto& [k, v] : flatten(YAML::LoadFile((fs::path(dir) / "summary.yaml").string()))) summary[k] = v;
      } catch (const YAML::Exception&) {
      }
    }
    configs.push_back(std::move(cfg));
    summaries.push_back(std::move(summary));
    runs.push_back(std::move(r));
  }
  const size_t n = runs.size();
  Table differing;
  for (const auto& k : config_keys) {
    std::vector<std::string> vals;
    for (const auto& c : configs) {
      auto it = c.find(k);
      vals.push_back(it == c.end() ? "-" : it->second);
    }
    if (std::any_of(vals.begin(), vals.end(), [&](const std::string& v) { return v != vals[0]; }))
      differing.emplace_back(k, vals);
  }
  Table metrics;
  std::vector<std::string> keys;
  for (const auto& r : runs)
    for (const auto& k : r.history.eval_keys())
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  for (const auto& k : keys) {
    std::vector<std::string> last, best;
    for (const auto& r : runs) {
      const auto l = r.history.last(k);
      const auto b = r.history.best(k);
      last.push_back(l ? short_number(*l) : "-");
      best.push_back(b ? short_number(b->first) + " (epoch " + std::to_string(b->second) + ")" : "-");
    }
    metrics.emplace_back(k + " final", last);
    metrics.emplace_back(k + " best", best);
  }
  auto row_of = [&](const std::string& label, auto get) {
    std::vector<std::string> vals;
    for (size_t i = 0; i < n; ++i) vals.push_back(get(i));
    metrics.emplace_back(label, vals);
  };
  row_of("iterations", [&](size_t i) {
    return runs[i].history.empty() ? std::string("0") : std::to_string(runs[i].history.rows().back().iteration);
  });
  for (const auto& [key, label] : std::vector<std::pair<std::string, std::string>>{
           {"status", "status"}, {"images_per_second", "images/s"}, {"train_seconds", "training time (s)"}})
    row_of(label, [&, key = key](size_t i) {
      auto it = summaries[i].find(key);
      return it == summaries[i].end() ? std::string("-") : it->second;
    });

  for (size_t i = 0; i < n; ++i) out << "#" << i + 1 << "  " << run_dirs[i] << "\n";
  out << "\n";
  if (differing.empty()) out << "config: identical\n";
  else print_table(out, "config (keys that differ)", differing, n);
  out << "\n";
  print_table(out, "metric", metrics, n);
  util::write_file_atomic(html_path, compare_html(runs, differing, metrics));
  out << "\nwrote " << html_path << "\n";
}

}  // namespace runner::tracking
