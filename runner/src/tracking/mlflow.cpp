#include "tracking/mlflow.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "runner/error.hpp"
#include "runner/params.hpp"
#include "util/files.hpp"

namespace fs = std::filesystem;

namespace runner::tracking {

int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string mlflow_key(const std::string& key) {
  std::string out = key;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ' ' || c == '/'))
      c = '_';
  while (!out.empty() && out[0] == '/') out.erase(0, 1);
  if (out.empty() || out.rfind("..", 0) == 0) out = "_" + out;
  if (out.size() > 250) out.resize(250);
  return out;
}

namespace {

// YAML single-quoted scalar, as PyYAML's safe_dump writes strings that need quoting.
std::string yaml_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::string random_hex(int n) {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(unix_ms()));
  const char* digits = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s += digits[gen() % 16];
  return s;
}

// An 18-digit experiment id, as MLflow 2.x's file store makes them.
std::string random_experiment_id() {
  std::string id;
  std::random_device rd;
  for (int i = 0; i < 18; ++i) id += static_cast<char>('0' + (rd() % 10));
  if (id[0] == '0') id[0] = '1';
  return id;
}

std::string file_uri(const fs::path& p) { return "file://" + fs::absolute(p).lexically_normal().string(); }

std::string experiment_meta(const std::string& id, const std::string& name, const fs::path& dir, int64_t ms) {
  return "artifact_location: " + yaml_quoted(file_uri(dir)) + "\ncreation_time: " + std::to_string(ms) +
         "\nexperiment_id: " + yaml_quoted(id) + "\nlast_update_time: " + std::to_string(ms) +
         "\nlifecycle_stage: active\nname: " + yaml_quoted(name) + "\n";
}

// Holds an flock on <root>/.runner.lock: two runs starting at once create one experiment.
struct StoreLock {
  int fd = -1;
  explicit StoreLock(const fs::path& root) {
    fd = ::open((root / ".runner.lock").c_str(), O_CREAT | O_RDWR, 0644);
    if (fd >= 0) ::flock(fd, LOCK_EX);
  }
  ~StoreLock() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

MlflowRun::MlflowRun(const std::string& root_text, const std::string& experiment, const std::string& run_name) {
  const fs::path root = fs::absolute(root_text).lexically_normal();
  std::error_code ec;
  const int64_t now = unix_ms();
  if (!fs::exists(root, ec)) {  // a new store gets MLflow's Default experiment 0 and .trash
    fs::create_directories(root / ".trash", ec);
    if (ec) throw Error(root.string() + ": cannot create the MLflow store: " + ec.message());
    util::write_text(root / "0" / "meta.yaml", experiment_meta("0", "Default", root / "0", now));
  } else if (!fs::is_directory(root, ec)) {
    throw Error(root.string() + ": the MLflow store (tracking.mlflow.uri) is not a folder");
  }
  StoreLock lock(root);
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const fs::path meta = entry.path() / "meta.yaml";
    if (!entry.is_directory() || !fs::exists(meta)) continue;
    try {
      YAML::Node m = YAML::LoadFile(meta.string());
      if (m["name"] && m["name"].as<std::string>() == experiment &&
          (!m["lifecycle_stage"] || m["lifecycle_stage"].as<std::string>() == "active")) {
        experiment_id_ = entry.path().filename().string();
        break;
      }
    } catch (const YAML::Exception&) {
      // MLflow skips malformed experiments too
    }
  }
  if (experiment_id_.empty()) {
    experiment_id_ = random_experiment_id();
    util::write_text(root / experiment_id_ / "meta.yaml",
                     experiment_meta(experiment_id_, experiment, root / experiment_id_, now));
  }
  run_id_ = random_hex(32);
  run_ = (root / experiment_id_ / run_id_).string();
  run_name_ = run_name;
  artifact_uri_ = file_uri(root / experiment_id_ / run_id_ / "artifacts");
  const char* user = std::getenv("USER");
  user_ = user && *user ? user : (getuid() == 0 ? "root" : "unknown");
  start_ms_ = now;
  for (const char* sub : {"metrics", "params", "tags", "artifacts"}) fs::create_directories(fs::path(run_) / sub, ec);
  if (ec) throw Error(run_ + ": cannot create the MLflow run: " + ec.message());
  write_meta(1, -1);
  tag("mlflow.runName", run_name_);
  tag("mlflow.user", user_);
  tag("mlflow.source.name", "runner");
  tag("mlflow.source.type", "LOCAL");
}

MlflowRun::MlflowRun(const std::string& run_path, int64_t keep_through_step) : run_(run_path) {
  const fs::path meta = fs::path(run_) / "meta.yaml";
  YAML::Node m;
  try {
    m = YAML::LoadFile(meta.string());
    run_id_ = m["run_id"].as<std::string>();
    experiment_id_ = m["experiment_id"].as<std::string>();
    run_name_ = m["run_name"] ? m["run_name"].as<std::string>() : "";
    artifact_uri_ = m["artifact_uri"].as<std::string>();
    user_ = m["user_id"] ? m["user_id"].as<std::string>() : "";
    start_ms_ = m["start_time"].as<int64_t>();
  } catch (const std::exception& e) {
    throw Error(meta.string() + ": cannot reopen the MLflow run of this training run: " + e.what());
  }
  // A resumed run redoes the steps after its checkpoint: drop what they logged before.
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(fs::path(run_) / "metrics", ec)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path());
    std::string line, kept;
    while (std::getline(in, line)) {
      std::istringstream ss(line);
      std::string ts, value;
      int64_t step = 0;
      ss >> ts >> value >> step;
      if (step <= keep_through_step) kept += line + "\n";
    }
    in.close();
    util::write_file_atomic(entry.path().string(), kept);
  }
  write_meta(1, -1);
}

void MlflowRun::write_meta(int status, int64_t end_time_ms) {
  const std::string text = "artifact_uri: " + yaml_quoted(artifact_uri_) +
                           "\nend_time: " + (end_time_ms < 0 ? std::string("null") : std::to_string(end_time_ms)) +
                           "\nentry_point_name: ''\nexperiment_id: " + yaml_quoted(experiment_id_) +
                           "\nlifecycle_stage: active\nrun_id: " + yaml_quoted(run_id_) +
                           "\nrun_name: " + yaml_quoted(run_name_) + "\nrun_uuid: " + yaml_quoted(run_id_) +
                           "\nsource_name: ''\nsource_type: 4\nsource_version: ''" +
                           "\nstart_time: " + std::to_string(start_ms_) + "\nstatus: " + std::to_string(status) +
                           "\ntags: []\nuser_id: " + yaml_quoted(user_) + "\n";
  util::write_file_atomic((fs::path(run_) / "meta.yaml").string(), text);
}

void MlflowRun::param(const std::string& key, const std::string& value) {
  util::write_text(fs::path(run_) / "params" / mlflow_key(key), value.size() > 6000 ? value.substr(0, 6000) : value);
}

void MlflowRun::tag(const std::string& key, const std::string& value) {
  util::write_text(fs::path(run_) / "tags" / mlflow_key(key), value.size() > 5000 ? value.substr(0, 5000) : value);
}

void MlflowRun::metric(const std::string& key, double value, int64_t step, int64_t timestamp_ms) {
  const fs::path path = fs::path(run_) / "metrics" / mlflow_key(key);
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::app);
  const std::string v = std::isnan(value)   ? "nan"
                        : std::isinf(value) ? (value > 0 ? "inf" : "-inf")
                                            : format_number(value);
  out << timestamp_ms << " " << v << " " << step << "\n";
  if (!out) throw Error(path.string() + ": cannot append (MLflow store)");
}

void MlflowRun::artifact(const std::string& file, const std::string& dest) {
  const fs::path to = fs::path(run_) / "artifacts" / dest;
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  fs::copy_file(file, to, fs::copy_options::overwrite_existing, ec);
  if (ec) throw Error(file + ": cannot copy to the MLflow artifacts (" + to.string() + "): " + ec.message());
}

void MlflowRun::finish(Status status) { write_meta(static_cast<int>(status), unix_ms()); }

}  // namespace runner::tracking
