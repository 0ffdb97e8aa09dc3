#include "tracking/recorder.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "logging/log.hpp"
#include "runner/error.hpp"
#include "runner/params.hpp"
#include "tracking/mlflow.hpp"
#include "tracking/mlflow_server.hpp"
#include "tracking/tensorboard.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace runner::tracking {
namespace {

double unix_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// <run>/mlflow_run holds the MLflow run folder (or its page on a tracking server), so a
// resumed run continues it.
constexpr const char* kMlflowLink = "mlflow_run";
constexpr const char* kMlflowUnsent = "mlflow_unsent.txt";

std::string mlflow_root(const std::string& uri) {
  return uri.rfind("file:", 0) == 0 ? uri.substr(uri.rfind("file://", 0) == 0 ? 7 : 5) : uri;
}

}  // namespace

Recorder::Recorder(const TrackingOptions& options, RunInfo info, const std::string& run_dir,
                   const std::vector<std::string>& metric_tags, int64_t resume_iteration)
    : options_(options), info_(std::move(info)), run_dir_(run_dir) {
  const std::string& config_yaml = info_.config_yaml;
  const std::string jsonl = metrics_log_path(run_dir);
  if (resume_iteration >= 0 && fs::exists(jsonl)) history_ = read_metrics(jsonl);
  jsonl_ = std::make_unique<MetricsLog>(jsonl);
  const double now = unix_seconds();
  const auto params = flatten(YAML::Load(config_yaml));  // hparams and MLflow params
  if (options.tensorboard) {
    tb_ = std::make_unique<EventWriter>(run_dir + "/tb");
    if (resume_iteration >= 0) {
      tb_->session_start(resume_iteration + 1, now);
    } else {
      tb_->text("config", "```\n" + config_yaml + "```", 0, now);
      tb_->text("model_summary", "```\n" + info_.model_summary + "```", 0, now);
    }
    std::vector<std::string> tags = metric_tags;
    tags.insert(tags.begin(), "train/batch_loss");
    tb_->hparams(params, tags, now);
  }
  if (options.mlflow) {
    const std::string link = run_dir + "/" + kMlflowLink;
    std::string previous;
    if (resume_iteration >= 0 && fs::exists(link)) std::getline(std::ifstream(link), previous);
    const std::string unsent = run_dir + "/" + kMlflowUnsent;
    if (MlflowServerRun::is_server(previous)) {
      mlflow_ = std::make_unique<MlflowServerRun>(previous, unsent);
    } else if (!previous.empty() && fs::exists(previous + "/meta.yaml")) {
      mlflow_ = std::make_unique<MlflowRun>(previous, resume_iteration);
    } else {
      const MlflowOptions& m = *options.mlflow;
      const std::string name = m.run_name.value_or(fs::path(run_dir).filename().string());
      if (MlflowServerRun::is_server(m.uri))
        mlflow_ = std::make_unique<MlflowServerRun>(m.uri, m.experiment.value_or(""), name, unsent);
      else
        mlflow_ = std::make_unique<MlflowRun>(mlflow_root(m.uri), m.experiment.value_or(""), name);
      for (const auto& [k, v] : params) mlflow_->param(k, v);
      mlflow_->tag("runner.run_folder", fs::absolute(run_dir).string());
      mlflow_->tag("mlflow.note.content",
                   "runner run of " + info_.config_path + "; run folder " + fs::absolute(run_dir).string());
      mlflow_->artifact(run_dir + "/config.yaml", "config.yaml");
      mlflow_->artifact(run_dir + "/model_summary.txt", "model_summary.txt");
      util::write_file_atomic(link, mlflow_->run_path() + "\n");
    }
    mlflow_path_ = mlflow_->run_path();
  }
}

Recorder::~Recorder() = default;

void Recorder::log(int64_t iteration, int64_t epoch, const Values& values) {
  jsonl_->write(iteration, epoch, values);
  history_.add(iteration, epoch, values);
  const double now = unix_seconds();
  for (const auto& [k, v] : values) {
    if (tb_) tb_->scalar(k, v, iteration, now);
    if (mlflow_) mlflow_->metric(k, v, iteration, static_cast<int64_t>(now * 1000));
  }
  if (tb_) tb_->flush();
}

void Recorder::throughput(int64_t iteration, double images_per_s) {
  images_per_s_.emplace_back(iteration, images_per_s);
  const double now = unix_seconds();
  if (tb_) tb_->scalar("train/images_per_s", images_per_s, iteration, now);
  if (mlflow_) mlflow_->metric("train/images_per_s", images_per_s, iteration, static_cast<int64_t>(now * 1000));
}

void Recorder::write_report(const std::string& status, const Facts& facts) {
  util::write_file_atomic(run_dir_ + "/metrics.csv", history_.csv());
  if (!options_.report) return;
  ReportInfo info;
  info.title = fs::path(run_dir_).filename().string();
  info.run_dir = fs::absolute(run_dir_).string();
  info.status = status;
  info.config_yaml = info_.config_yaml;
  info.model_summary = info_.model_summary;
  info.facts = facts;
  info.images_per_s = images_per_s_;
  info.step_parts = step_parts_;
  info.refresh_seconds = status == "running" ? 30 : 0;
  util::write_file_atomic(run_dir_ + "/report.html", report_html(info, history_));
}

void Recorder::refresh(const Facts& facts) { write_report("running", facts); }

std::vector<std::pair<std::string, std::pair<double, int64_t>>> Recorder::best() const {
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> out;
  for (const auto& k : history_.eval_keys())
    if (auto b = history_.best(k)) out.emplace_back(k, *b);
  return out;
}

void Recorder::finish(const std::string& status, const Facts& facts, const Values& summary) {
  if (finished_) return;
  finished_ = true;
  auto guarded = [&](const char* what, auto&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      RLOG_WARN("{}: {}", what, first_line(e.what()));
    }
  };
  guarded("report.html", [&] { write_report(status, facts); });
  guarded("summary.yaml", [&] {
    YAML::Emitter y;
    y << YAML::BeginMap << YAML::Key << "status" << YAML::Value << status;
    for (const auto& [k, v] : summary) {
      y << YAML::Key << k << YAML::Value;
      if (v == std::floor(v) && std::fabs(v) < 1e15)
        y << static_cast<int64_t>(v);
      else
        y << format_number(v);
    }
    y << YAML::Key << "final" << YAML::Value << YAML::BeginMap;
    for (const auto& k : history_.eval_keys())
      if (auto v = history_.last(k)) y << YAML::Key << k << YAML::Value << format_number(*v);
    y << YAML::EndMap << YAML::Key << "best" << YAML::Value << YAML::BeginMap;
    for (const auto& [k, b] : best())
      y << YAML::Key << k << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "value" << YAML::Value
        << format_number(b.first) << YAML::Key << "epoch" << YAML::Value << b.second << YAML::EndMap;
    y << YAML::EndMap << YAML::Key << "run_folder" << YAML::Value << fs::absolute(run_dir_).string();
    if (mlflow_) y << YAML::Key << "mlflow_run" << YAML::Value << mlflow_path_;
    y << YAML::EndMap;
    util::write_file_atomic(run_dir_ + "/summary.yaml", std::string(y.c_str()) + "\n");
  });
  if (tb_)
    guarded("TensorBoard", [&] {
      tb_->hparams_end(status == "finished", unix_seconds());
      tb_->flush();
    });
  if (mlflow_)
    guarded("MLflow", [&] {
      for (const char* f : {"metrics.csv", "report.html", "summary.yaml", "model.safetensors"})
        if (fs::exists(run_dir_ + "/" + f)) mlflow_->artifact(run_dir_ + "/" + f, f);
      std::error_code ec;
      if (fs::is_directory(run_dir_ + "/best", ec))
        for (const auto& e : fs::directory_iterator(run_dir_ + "/best", ec))
          if (e.is_regular_file()) mlflow_->artifact(e.path().string(), "best/" + e.path().filename().string());
      mlflow_->finish(status == "finished"  ? MlflowSink::Status::Finished
                      : status == "stopped" ? MlflowSink::Status::Killed
                                            : MlflowSink::Status::Failed);
    });
}

}  // namespace runner::tracking
