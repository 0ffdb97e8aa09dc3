#pragma once
// An MLflow run in MLflow's file store (what `mlflow ui --backend-store-uri ./mlruns`
// reads): <root>/<experiment id>/meta.yaml, <root>/<experiment id>/<run id>/{meta.yaml,
// params/, metrics/, tags/, artifacts/}. Layout and formats as mlflow/store/tracking/
// file_store.py (MLflow 2.x) writes them; keys with '/' are nested folders, as there.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace runner::tracking {

/// Where a run's MLflow record goes: the file store (MlflowRun, below) or a tracking
/// server over its REST API (MlflowServerRun, tracking/mlflow_server.hpp).
class MlflowSink {
 public:
  virtual ~MlflowSink() = default;
  /// What <run>/mlflow_run and summary.yaml name: the run's folder, or its page on the server.
  virtual const std::string& run_path() const = 0;
  virtual void param(const std::string& key, const std::string& value) = 0;
  virtual void tag(const std::string& key, const std::string& value) = 0;
  virtual void metric(const std::string& key, double value, int64_t step, int64_t timestamp_ms) = 0;
  /// Stores a file as artifacts/<dest> (folders in `dest` are created).
  virtual void artifact(const std::string& file, const std::string& dest) = 0;
  /// Ends the run: FINISHED, FAILED or KILLED, with its end time.
  enum class Status { Finished = 3, Failed = 4, Killed = 5 };
  virtual void finish(Status status) = 0;
};

class MlflowRun : public MlflowSink {
 public:
  /// Creates a run in experiment `experiment` of the store at `root` (a path; the store
  /// and the experiment are created when missing, under a lock). Throws Error.
  MlflowRun(const std::string& root, const std::string& experiment, const std::string& run_name);
  /// Reopens the run at `run_path` (a resumed training run) and drops the metric lines
  /// with step > `keep_through_step`.
  MlflowRun(const std::string& run_path, int64_t keep_through_step);

  const std::string& run_path() const override { return run_; }

  void param(const std::string& key, const std::string& value) override;
  void tag(const std::string& key, const std::string& value) override;
  void metric(const std::string& key, double value, int64_t step, int64_t timestamp_ms) override;
  void artifact(const std::string& file, const std::string& dest) override;
  void finish(Status status) override;

 private:
  void write_meta(int status, int64_t end_time_ms);
  std::string run_, run_id_, experiment_id_, run_name_, artifact_uri_, user_;
  int64_t start_ms_ = 0;
};

/// MLflow's rule for metric/param/tag keys: letters, digits, '_', '-', '.', ' ', '/';
/// anything else becomes '_'.
std::string mlflow_key(const std::string& key);
/// Milliseconds since the epoch.
int64_t unix_ms();

}  // namespace runner::tracking
