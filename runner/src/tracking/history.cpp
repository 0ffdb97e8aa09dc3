#include "tracking/history.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "runner/error.hpp"

namespace runner::tracking {

void History::add(int64_t iteration, int64_t epoch, const Values& values) {
  rows_.push_back(Row{iteration, epoch, values});
  for (const auto& kv : values)
    if (std::find(keys_.begin(), keys_.end(), kv.first) == keys_.end()) keys_.push_back(kv.first);
}

std::vector<std::string> History::eval_keys() const {
  std::vector<std::string> out;
  for (const auto& k : keys_)
    if (is_eval_key(k)) out.push_back(k);
  return out;
}

bool is_eval_key(const std::string& key) { return key.rfind("val/", 0) == 0 || key.rfind("train_eval/", 0) == 0; }

Series History::series(const std::string& key) const {
  Series s;
  for (const auto& r : rows_)
    for (const auto& [k, v] : r.values)
      if (k == key) s.emplace_back(r.iteration, v);
  return s;
}

std::optional<double> History::last(const std::string& key) const {
  for (auto r = rows_.rbegin(); r != rows_.rend(); ++r)
    for (const auto& [k, v] : r->values)
      if (k == key) return v;
  return std::nullopt;
}

std::optional<std::pair<double, int64_t>> History::best(const std::string& key) const {
  std::optional<std::pair<double, int64_t>> b;
  const bool lower = lower_is_better(key);
  for (const auto& r : rows_)
    for (const auto& [k, v] : r.values) {
      if (k != key || !std::isfinite(v)) continue;
      if (!b || (lower ? v < b->first : v > b->first)) b = std::make_pair(v, r.epoch);
    }
  return b;
}

std::string History::csv() const {
  std::string out = "iteration,epoch";
  for (const auto& k : keys_) out += "," + k;
  out += "\n";
  char buf[64];
  for (const auto& r : rows_) {
    out += std::to_string(r.iteration) + "," + std::to_string(r.epoch);
    for (const auto& k : keys_) {
      out += ",";
      for (const auto& [rk, v] : r.values)
        if (rk == k) {
          if (std::isfinite(v)) {
            std::snprintf(buf, sizeof buf, "%.17g", v);
            out += buf;
          } else {
            out += std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
          }
          break;
        }
    }
    out += "\n";
  }
  return out;
}

namespace {
// One line of metrics.jsonl: a flat object of "key": number|null.
bool parse_line(const std::string& line, Row* row) {
  size_t i = 0;
  auto ws = [&] {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
  };
  ws();
  if (i >= line.size() || line[i++] != '{') return false;
  bool has_iteration = false;
  for (;;) {
    ws();
    if (i < line.size() && line[i] == '}') break;
    if (i >= line.size() || line[i++] != '"') return false;
    const size_t end = line.find('"', i);
    if (end == std::string::npos) return false;
    const std::string key = line.substr(i, end - i);
    i = end + 1;
    ws();
    if (i >= line.size() || line[i++] != ':') return false;
    ws();
    double v = NAN;
    if (line.compare(i, 4, "null") == 0) {
      i += 4;
    } else {
      const char* start = line.c_str() + i;
      char* stop = nullptr;
      v = std::strtod(start, &stop);
      if (stop == start) return false;
      i += static_cast<size_t>(stop - start);
    }
    if (key == "iteration") {
      row->iteration = static_cast<int64_t>(v);
      has_iteration = true;
    } else if (key == "epoch") {
      row->epoch = static_cast<int64_t>(v);
    } else {
      row->values.emplace_back(key, v);
    }
    ws();
    if (i < line.size() && line[i] == ',') {
      ++i;
      continue;
    }
    ws();
    if (i < line.size() && line[i] == '}') break;
    return false;
  }
  return has_iteration;
}
}  // namespace

History History::load_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read (is this a run folder?)");
  History h;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Row r;
    if (!parse_line(line, &r))
      throw Error(path + ":" + std::to_string(n) + ": not a metrics record ({\"iteration\": N, \"key\": value, ...})");
    h.add(r.iteration, r.epoch, r.values);
  }
  return h;
}

bool lower_is_better(const std::string& key) {
  const std::string name = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
  return name.find("loss") != std::string::npos || name.find("error") != std::string::npos ||
         name.find("nll") != std::string::npos;
}

std::vector<std::pair<std::string, std::string>> flatten(const YAML::Node& node, const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  if (node.IsMap()) {
    for (const auto& kv : node) {
      const std::string key = prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>();
      auto sub = flatten(kv.second, key);
      out.insert(out.end(), sub.begin(), sub.end());
    }
    if (node.size() == 0 && !prefix.empty()) out.emplace_back(prefix, "{}");
  } else if (node.IsSequence()) {
    YAML::Emitter e;
    e << YAML::Flow << node;
    out.emplace_back(prefix, e.c_str());
  } else if (node.IsNull() || !node.IsDefined()) {
    out.emplace_back(prefix, "null");
  } else {
    out.emplace_back(prefix, node.Scalar());
  }
  return out;
}

std::string short_number(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace runner::tracking
