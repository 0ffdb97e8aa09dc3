#include "tracking/history.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "util/strings.hpp"

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

bool is_eval_key(const std::string& key) {
  return key.rfind("val/", 0) == 0 || key.rfind("val_ema/", 0) == 0 || key.rfind("train_eval/", 0) == 0;
}

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

namespace {
// A metrics.csv field (RFC 4180): quoted, with quotes doubled, if it holds , " CR or LF.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}
}  // namespace

std::string History::csv() const {
  std::string out = "iteration,epoch";
  for (const auto& k : keys_) out += "," + csv_field(k);
  out += "\n";
  for (const auto& r : rows_) {
    out += std::to_string(r.iteration) + "," + std::to_string(r.epoch);
    for (const auto& k : keys_) {
      out += ",";
      for (const auto& [rk, v] : r.values)
        if (rk == k) {
          out += shortest(v);
          break;
        }
    }
    out += "\n";
  }
  return out;
}

bool lower_is_better(const std::string& key) {
  const std::string name = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
  for (const char* lower : {"loss", "error", "nll", "bits_per", "perplexity"})
    if (name.find(lower) != std::string::npos) return true;
  return false;
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
