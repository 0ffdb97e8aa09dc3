#include "tracking/mlflow_server.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "logging/log.hpp"
#include "runner/error.hpp"

namespace runner::tracking {
namespace {

using json = nlohmann::json;
constexpr const char* kApi = "/api/2.0/mlflow/";
// log-batch limits of the MLflow REST API.
constexpr size_t kMaxMetrics = 1000, kMaxParams = 100, kMaxTags = 100;
constexpr auto kFlushEvery = std::chrono::seconds(2);   // metrics wait at most this long
constexpr auto kRetryEvery = std::chrono::seconds(2);   // while the server does not answer
constexpr auto kFinishWait = std::chrono::seconds(15);  // at the end, for a server that is away

// The answer's JSON, or an Error naming what was asked and what came back.
json call(const HttpClient& http, const std::string& method, const std::string& endpoint, const json& body) {
  const HttpResponse r = http.request(method, kApi + endpoint, body.is_null() ? "" : body.dump());
  if (!r.ok()) throw Error("MLflow server " + http.base() + ": " + method + " " + endpoint + ": " + r.describe());
  return r.body.empty() ? json::object() : json::parse(r.body, nullptr, false);
}

// A metric value as proto3 JSON writes doubles: non-finite ones are strings.
json metric_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return v;
}

std::string experiment_id(const HttpClient& http, const std::string& name) {
  const HttpResponse r = http.request(
      "GET", std::string(kApi) + "experiments/get-by-name?experiment_name=" + HttpClient::escape(name, false));
  if (r.ok()) return json::parse(r.body).at("experiment").at("experiment_id").get<std::string>();
  if (r.status != 404 && r.body.find("RESOURCE_DOES_NOT_EXIST") == std::string::npos)
    throw Error("MLflow server " + http.base() + ": cannot look up experiment '" + name + "': " + r.describe());
  const HttpResponse made = http.request("POST", std::string(kApi) + "experiments/create", json{{"name", name}}.dump());
  if (made.ok()) return json::parse(made.body).at("experiment_id").get<std::string>();
  if (made.body.find("RESOURCE_ALREADY_EXISTS") != std::string::npos) return experiment_id(http, name);  // a race
  throw Error("MLflow server " + http.base() + ": cannot create experiment '" + name + "': " + made.describe());
}

}  // namespace

bool MlflowServerRun::is_server(const std::string& uri) {
  return uri.rfind("http://", 0) == 0 || uri.rfind("https://", 0) == 0;
}

MlflowServerRun::MlflowServerRun(const std::string& uri, const std::string& experiment, const std::string& run_name,
                                 const std::string& unsent_file)
    : http_(uri), unsent_file_(unsent_file) {
  experiment_id_ = experiment_id(http_, experiment);
  const json made = call(http_, "POST", "runs/create",
                         json{{"experiment_id", experiment_id_},
                              {"run_name", run_name},
                              {"start_time", unix_ms()},
                              {"tags", json::array({{{"key", "mlflow.source.type"}, {"value", "LOCAL"}},
                                                    {{"key", "mlflow.source.name"}, {"value", "runner"}}})}});
  const json& info = made.at("run").at("info");
  run_id_ = info.at("run_id").get<std::string>();
  artifact_root_ = info.value("artifact_uri", "");
  page_ = http_.base() + "/#/experiments/" + experiment_id_ + "/runs/" + run_id_;
  start_sender();
}

MlflowServerRun::MlflowServerRun(const std::string& run_page, const std::string& unsent_file)
    : http_(run_page.substr(0, run_page.find("/#/"))), page_(run_page), unsent_file_(unsent_file) {
  const size_t at = run_page.rfind("/runs/");
  if (run_page.find("/#/") == std::string::npos || at == std::string::npos)
    throw Error("MLflow: '" + run_page + "' is not a run's page on a tracking server");
  run_id_ = run_page.substr(at + 6);
  const json got = call(http_, "GET", "runs/get?run_id=" + HttpClient::escape(run_id_, false), nullptr);
  const json& info = got.at("run").at("info");
  experiment_id_ = info.at("experiment_id").get<std::string>();
  artifact_root_ = info.value("artifact_uri", "");
  replay_unsent();
  call(http_, "POST", "runs/update", json{{"run_id", run_id_}, {"status", "RUNNING"}});
  start_sender();
}

// What an earlier run of this folder could not send (the server was away at its end) goes
// first, in order; what still does not pass stays in the file.
void MlflowServerRun::replay_unsent() {
  std::ifstream in(unsent_file_);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  if (lines.empty()) return;
  size_t sent = 0;
  for (; sent < lines.size(); ++sent) {
    const std::string& l = lines[sent];
    const size_t a = l.find(' '), b = a == std::string::npos ? a : l.find(' ', a + 1);
    if (b == std::string::npos) break;
    if (!http_.request(l.substr(0, a), l.substr(a + 1, b - a - 1), l.substr(b + 1)).ok()) break;
  }
  std::ofstream out(unsent_file_, std::ios::trunc);
  for (size_t i = sent; i < lines.size(); ++i) out << lines[i] << '\n';
  out.close();
  if (sent == lines.size()) std::remove(unsent_file_.c_str());
  RLOG_INFO("MLflow: {} of {} request(s) kept in {} by the previous run sent", sent, lines.size(), unsent_file_);
}

MlflowServerRun::~MlflowServerRun() { stop_sender(); }

void MlflowServerRun::param(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(Entry{'p', mlflow_key(key), value.substr(0, 6000)});
}

void MlflowServerRun::tag(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(Entry{'t', mlflow_key(key), value.substr(0, 5000)});
}

void MlflowServerRun::metric(const std::string& key, double value, int64_t step, int64_t timestamp_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(Entry{'m', mlflow_key(key), "", value, step, timestamp_ms});
  if (queue_.size() >= kMaxMetrics) cv_.notify_one();
}

void MlflowServerRun::artifact(const std::string& file, const std::string& dest) {
  const std::string proxy = "mlflow-artifacts:";
  if (artifact_root_.rfind(proxy, 0) != 0) {
    if (!artifacts_warned_)
      RLOG_WARN(
          "MLflow: artifacts not uploaded: this run's artifact location is {}, which the server does not "
          "proxy (mlflow server serves artifacts by default; do not start it with --no-serve-artifacts)",
          artifact_root_);
    artifacts_warned_ = true;
    return;
  }
  std::string root = artifact_root_.substr(proxy.size());  // "/<experiment>/<run>/artifacts" or "//host/..."
  if (root.rfind("//", 0) == 0) root = root.substr(root.find('/', 2));
  const std::string path = "/api/2.0/mlflow-artifacts/artifacts" + HttpClient::escape(root + "/" + dest, true);
  const HttpResponse r = http_.put_file(path, file);
  if (!r.ok()) RLOG_WARN("MLflow: artifact {} not uploaded to {}: {}", dest, http_.base(), r.describe());
}

void MlflowServerRun::finish(Status status) {
  stop_sender();
  const char* name = status == Status::Finished ? "FINISHED" : status == Status::Killed ? "KILLED" : "FAILED";
  const std::string body = json{{"run_id", run_id_}, {"status", name}, {"end_time", unix_ms()}}.dump();
  const HttpResponse r = http_.request("POST", std::string(kApi) + "runs/update", body);
  if (!r.ok()) {
    save_unsent("POST", std::string(kApi) + "runs/update", body);
    RLOG_WARN("MLflow: the run's status {} was not sent ({}); it is in {}", name, r.describe(), unsent_file_);
  }
}

// ---------------------------------------------------------------- the sender thread

void MlflowServerRun::start_sender() {
  sender_ = std::thread([this] { sender_loop(); });
}

void MlflowServerRun::stop_sender() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (sender_.joinable()) sender_.join();
  std::lock_guard<std::mutex> lock(mu_);
  size_t lines = 0;
  while (!queue_.empty()) {  // the server stayed away: keep what it did not get
    size_t taken = 0;
    const std::string body = next_batch(&taken);
    save_unsent("POST", std::string(kApi) + "runs/log-batch", body);
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(taken));
    ++lines;
  }
  if (refused_ > 1) RLOG_WARN("MLflow server {} refused {} requests of values in all", http_.base(), refused_);
  if (lines)
    RLOG_WARN(
        "MLflow server {} did not answer by the end of the run: {} request(s) kept in {} (README: MLflow, "
        "replaying them)",
        http_.base(), lines, unsent_file_);
}

std::string MlflowServerRun::next_batch(size_t* taken) const {
  json metrics = json::array(), params = json::array(), tags = json::array();
  size_t n = 0;
  for (const Entry& e : queue_) {
    if (e.kind == 'p' && params.size() == kMaxParams) break;
    if (e.kind == 't' && tags.size() == kMaxTags) break;
    if (metrics.size() + params.size() + tags.size() == kMaxMetrics) break;
    if (e.kind == 'p') params.push_back({{"key", e.key}, {"value", e.text}});
    if (e.kind == 't') tags.push_back({{"key", e.key}, {"value", e.text}});
    if (e.kind == 'm')
      metrics.push_back(
          {{"key", e.key}, {"value", metric_value(e.value)}, {"timestamp", e.timestamp}, {"step", e.step}});
    ++n;
  }
  *taken = n;
  return json{{"run_id", run_id_}, {"metrics", metrics}, {"params", params}, {"tags", tags}}.dump();
}

void MlflowServerRun::sender_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  auto give_up_at = std::chrono::steady_clock::time_point::max();
  for (;;) {
    if (!stop_)
      cv_.wait_for(lock, down_ ? kRetryEvery : kFlushEvery,
                   [&] { return stop_ || (!down_ && queue_.size() >= kMaxMetrics); });
    if (stop_ && give_up_at == std::chrono::steady_clock::time_point::max())
      give_up_at = std::chrono::steady_clock::now() + kFinishWait;
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    size_t taken = 0;
    const std::string body = next_batch(&taken);
    lock.unlock();
    const HttpResponse r = http_.request("POST", std::string(kApi) + "runs/log-batch", body);
    lock.lock();
    // Sent, or refused for good (a 4xx other than "too many requests" or "timeout" will not
    // pass on a retry either): dropped from the queue. Otherwise the server is away.
    const bool retry = r.status == 0 || r.status >= 500 || r.status == 429 || r.status == 408;
    if (!retry) {
      if (!r.ok() && refused_++ == 0)
        RLOG_WARN("MLflow server {} refused {} values: {} (further refusals are counted in run.log at the end)",
                  http_.base(), taken, r.describe());
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(taken));
      if (down_) RLOG_INFO("MLflow server {} answers again; the buffered metrics are sent", http_.base());
      down_ = false;
      continue;
    }
    if (!down_) went_down(r.describe());
    down_ = true;
    if (stop_ && std::chrono::steady_clock::now() >= give_up_at) return;
    if (stop_) cv_.wait_for(lock, kRetryEvery);
  }
}

void MlflowServerRun::went_down(const std::string& why) {
  RLOG_WARN("MLflow server {} does not answer ({}); training goes on and metrics are buffered until it does",
            http_.base(), why);
}

void MlflowServerRun::save_unsent(const std::string& method, const std::string& path, const std::string& body) {
  std::ofstream out(unsent_file_, std::ios::app);
  out << method << ' ' << path << ' ' << body << '\n';
}

}  // namespace runner::tracking
