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

// One run folder: its metric history, its config and summary.yaml as dotted keys.
struct LoadedRun {
  ComparedRun run;
  std::vector<std::pair<std::string, std::string>> config;
  std::map<std::string, std::string> summary;
};

LoadedRun load_run(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw ConfigError(dir + ": not a folder (expected a run folder)");
  for (const char* f : {"config.yaml", "metrics.jsonl"})
    if (!fs::exists(fs::path(dir) / f, ec)) throw ConfigError(dir + ": not a run folder (it has no " + f + ")");
  LoadedRun out;
  ComparedRun& r = out.run;
  r.name = fs::path(dir).lexically_normal().filename().string();
  if (r.name.empty() || r.name == ".") r.name = fs::path(dir).lexically_normal().parent_path().filename().string();
  r.history = read_metrics(metrics_log_path(dir));
  try {
    out.config = flatten(YAML::LoadFile((fs::path(dir) / "config.yaml").string()));
  } catch (const YAML::Exception& e) {
    throw ConfigError((fs::path(dir) / "config.yaml").string() + ": not readable YAML: " + e.what());
  }
  if (fs::exists(fs::path(dir) / "summary.yaml", ec)) {
    try {
      for (auto& [k, v] : flatten(YAML::LoadFile((fs::path(dir) / "summary.yaml").string()))) out.summary[k] = v;
    } catch (const YAML::Exception&) {  // a run still going or killed: no summary
    }
  }
  return out;
}

// The config keys whose values differ between runs ("-" where a run lacks the key).
Table differing_config(const std::vector<LoadedRun>& loaded) {
  std::vector<std::string> keys;  // union, first seen first
  std::vector<std::map<std::string, std::string>> configs;
  for (const auto& l : loaded) {
    configs.emplace_back(l.config.begin(), l.config.end());
    for (const auto& kv : l.config)
      if (std::find(keys.begin(), keys.end(), kv.first) == keys.end()) keys.push_back(kv.first);
  }
  Table differing;
  for (const auto& k : keys) {
    std::vector<std::string> vals;
    for (const auto& c : configs) {
      auto it = c.find(k);
      vals.push_back(it == c.end() ? "-" : it->second);
    }
    if (std::any_of(vals.begin(), vals.end(), [&](const std::string& v) { return v != vals[0]; }))
      differing.emplace_back(k, vals);
  }
  return differing;
}

// Final and best value of every validation metric, then iterations, status and speed.
Table metric_table(const std::vector<LoadedRun>& loaded) {
  Table metrics;
  std::vector<std::string> keys;
  for (const auto& l : loaded)
    for (const auto& k : l.run.history.eval_keys())
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  for (const auto& k : keys) {
    std::vector<std::string> last, best;
    for (const auto& l : loaded) {
      const auto lv = l.run.history.last(k);
      const auto b = l.run.history.best(k);
      last.push_back(lv ? short_number(*lv) : "-");
      best.push_back(b ? short_number(b->first) + " (epoch " + std::to_string(b->second) + ")" : "-");
    }
    metrics.emplace_back(k + " final", last);
    metrics.emplace_back(k + " best", best);
  }
  std::vector<std::string> iterations;
  for (const auto& l : loaded)
    iterations.push_back(l.run.history.empty() ? std::string("0")
                                               : std::to_string(l.run.history.rows().back().iteration));
  metrics.emplace_back("iterations", iterations);
  for (const auto& [key, label] : std::vector<std::pair<std::string, std::string>>{
           {"status", "status"}, {"images_per_second", "samples/s"}, {"train_seconds", "training time (s)"}}) {
    std::vector<std::string> vals;
    for (const auto& l : loaded) {
      auto it = l.summary.find(key);
      vals.push_back(it == l.summary.end() ? std::string("-") : it->second);
    }
    metrics.emplace_back(label, vals);
  }
  return metrics;
}

}  // namespace

void compare_runs(const std::vector<std::string>& run_dirs, const std::string& html_path, std::ostream& out) {
  if (run_dirs.size() < 2) throw ConfigError("usage: runner compare RUN_DIR RUN_DIR ... [--output compare.html]");
  std::vector<LoadedRun> loaded;
  for (const auto& dir : run_dirs) loaded.push_back(load_run(dir));
  const Table differing = differing_config(loaded);
  const Table metrics = metric_table(loaded);
  std::vector<ComparedRun> runs;
  for (auto& l : loaded) runs.push_back(std::move(l.run));
  const size_t n = runs.size();
  for (size_t i = 0; i < n; ++i) out << "#" << i + 1 << "  " << run_dirs[i] << "\n";
  out << "\n";
  if (differing.empty())
    out << "config: identical\n";
  else
    print_table(out, "config (keys that differ)", differing, n);
  out << "\n";
  print_table(out, "metric", metrics, n);
  util::write_file_atomic(html_path, compare_html(runs, differing, metrics));
  out << "\nwrote " << html_path << "\n";
}

}  // namespace runner::tracking
