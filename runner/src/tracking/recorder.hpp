#pragma once
// Everything rank 0 records about a run, behind one object: metrics.jsonl (the record
// that resume and `compare` read), metrics.csv, TensorBoard events (tb/), an MLflow run
// (tracking.mlflow), report.html, and summary.yaml at the end.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/options.hpp"
#include "logging/reports.hpp"
#include "tracking/history.hpp"
#include "tracking/html.hpp"
#include "tracking/metrics_log.hpp"

namespace runner::tracking {

class EventWriter;
class MlflowSink;

using Facts = std::vector<std::pair<std::string, std::string>>;

class Recorder {
 public:
  /// What the run is: its config file, resolved config (YAML) and model summary.
  struct RunInfo {
    std::string config_path, config_yaml, model_summary;
  };
  /// A new run (`resume_iteration` < 0) or a resumed one, whose metrics.jsonl has already
  /// been cut back to `resume_iteration`. `metric_tags`: the validation metrics logged.
  Recorder(const TrackingOptions& options, RunInfo info, const std::string& run_dir,
           const std::vector<std::string>& metric_tags, int64_t resume_iteration);
  ~Recorder();

  /// One row of metrics at `iteration` (train/batch_loss and lr, val/..., handler values).
  void log(int64_t iteration, int64_t epoch, const Values& values);
  /// Throughput over the last log interval: TensorBoard and MLflow (train/images_per_s)
  /// and the report, not metrics.jsonl (which stays the same from run to run).
  void throughput(int64_t iteration, double images_per_s);
  /// Rewrites metrics.csv and report.html (status "running").
  void refresh(const Facts& facts);
  /// The last refresh, summary.yaml, the end of the TensorBoard and MLflow sessions.
  /// status: finished | failed | stopped. Never throws (a failing run must still end).
  void finish(const std::string& status, const Facts& facts, const Values& summary);
  /// The training loop's seconds by part (data_wait, forward, ...), drawn as a stacked bar
  /// by the next refresh or finish.
  void step_parts(Values parts) { step_parts_ = std::move(parts); }

  /// The best value of each validation metric (is_eval_key) so far, with its epoch.
  std::vector<std::pair<std::string, std::pair<double, int64_t>>> best() const;
  const std::string& mlflow_run() const { return mlflow_path_; }

 private:
  void write_report(const std::string& status, const Facts& facts);
  const TrackingOptions& options_;
  RunInfo info_;
  std::string run_dir_;
  std::unique_ptr<MetricsLog> jsonl_;
  History history_;
  Series images_per_s_;
  Values step_parts_;
  std::unique_ptr<EventWriter> tb_;
  std::unique_ptr<MlflowSink> mlflow_;
  std::string mlflow_path_;
  bool finished_ = false;
};

}  // namespace runner::tracking
