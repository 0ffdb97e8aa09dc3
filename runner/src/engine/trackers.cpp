#include "engine/trackers.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "runner/arrays.hpp"
#include "runner/error.hpp"
#include "runner/params.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace runner {

namespace {
// best/<name>.pt -> best/<name>.safetensors
std::string safetensors_path(const std::string& pt) { return pt.substr(0, pt.size() - 3) + ".safetensors"; }
}  // namespace

void save_model_file(torch::nn::Module& model, const std::string& path) {
  torch::serialize::OutputArchive archive;
  model.save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  util::write_file_atomic(path, bytes.str());
}

void save_safetensors(const torch::nn::Module& model, const std::string& path) {
  std::map<std::string, torch::Tensor> state;
  for (const auto& p : model.named_parameters()) state[p.key()] = p.value();
  for (const auto& b : model.named_buffers()) state[b.key()] = b.value();
  const std::string tmp = path + ".tmp";
  write_safetensors(tmp, state);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(path + ": cannot be written: " + ec.message());
}

namespace {
std::string shape_of(const torch::Tensor& t) {
  std::string s;
  for (int64_t d : t.sizes()) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return "[" + s + "]";
}
}  // namespace

void load_safetensors(torch::nn::Module& model, const std::string& path) {
  std::map<std::string, torch::Tensor> state;
  try {
    state = read_safetensors(path);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  load_state(model, state, path);
}

void load_state(torch::nn::Module& model, const std::map<std::string, torch::Tensor>& state,
                const std::string& source) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  std::vector<std::string> names;
  auto load = [&](const std::string& name, torch::Tensor t) {
    names.push_back(name);
    auto it = state.find(name);
    if (it == state.end())
      throw ConfigError(source + ": has no tensor '" + name + "' (the model's is " + shape_of(t) + ")");
    if (it->second.sizes() != t.sizes())
      throw ConfigError(source + ": '" + name + "' is " + shape_of(it->second) + ", the model's is " + shape_of(t));
    t.copy_(it->second);
    used.insert(name);
  };
  for (const auto& p : model.named_parameters()) load(p.key(), p.value());
  for (const auto& b : model.named_buffers()) load(b.key(), b.value());
  for (const auto& [name, t] : state)
    if (!used.count(name))
      throw ConfigError(source + ": tensor '" + name + "' is not in the model" + did_you_mean(name, names));
}

std::string BestModels::update(int64_t epoch, double score, torch::nn::Module& model, const std::string& run_dir,
                               bool write) {
  if (!std::isfinite(score)) return "";
  if (static_cast<int>(kept_.size()) >= n_ && !rule_.better(score, kept_.back().score)) return "";
  std::string metric = rule_.metric;
  std::replace(metric.begin(), metric.end(), '/', '-');
  char name[256];
  std::snprintf(name, sizeof name, "best_epoch%lld_%s=%.4f.pt", static_cast<long long>(epoch), metric.c_str(), score);
  const std::string dir = run_dir + "/best", path = dir + "/" + name;
  if (write) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) throw Error(dir + ": cannot create: " + ec.message());
    save_model_file(model, path);
    save_safetensors(model, safetensors_path(path));
  }
  kept_.push_back({score, epoch, path});
  std::stable_sort(kept_.begin(), kept_.end(),
                   [&](const Entry& a, const Entry& b) { return rule_.better(a.score, b.score); });
  while (static_cast<int>(kept_.size()) > n_) {
    if (write) {
      std::error_code ec;
      fs::remove(kept_.back().file, ec);
      fs::remove(safetensors_path(kept_.back().file), ec);
    }
    kept_.pop_back();
  }
  return path;
}

YAML::Node BestModels::state() const {
  YAML::Node list(YAML::NodeType::Sequence);
  for (const auto& e : kept_) {
    YAML::Node n;
    n["score"] = format_number(e.score);
    n["epoch"] = e.epoch;
    n["file"] = e.file;
    list.push_back(n);
  }
  return list;
}

void BestModels::load(const YAML::Node& state) {
  kept_.clear();
  if (!state || !state.IsSequence()) return;
  for (const auto& n : state)
    kept_.push_back({n["score"].as<double>(), n["epoch"].as<int64_t>(), n["file"].as<std::string>()});
}

bool EarlyStopping::update(int64_t epoch, double score, std::string* why) {
  if (!has_best_ || rule_.better(score, best_, min_delta_)) {
    has_best_ = true;
    best_ = score;
    best_epoch_ = epoch;
    wait_ = 0;
    return false;
  }
  if (++wait_ < patience_) return false;
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "early stopping: %s has not improved by more than %g for %d validation(s) (best %.4f at epoch %lld)",
                rule_.metric.c_str(), min_delta_, patience_, best_, static_cast<long long>(best_epoch_));
  *why = buf;
  return true;
}

YAML::Node EarlyStopping::state() const {
  YAML::Node n;
  n["has_best"] = has_best_;
  n["best"] = format_number(best_);
  n["best_epoch"] = best_epoch_;
  n["wait"] = wait_;
  return n;
}

void EarlyStopping::load(const YAML::Node& n) {
  if (!n || !n.IsMap()) return;
  has_best_ = n["has_best"].as<bool>();
  best_ = n["best"].as<double>();
  best_epoch_ = n["best_epoch"].as<int64_t>();
  wait_ = n["wait"].as<int>();
}

}  // namespace runner
