#pragma once
// An MLflow run on a tracking server (tracking.mlflow.uri: http://host:port), through its
// REST API (/api/2.0/mlflow/...): the experiment is found or created, the run created
// with its tags, params and metrics sent in log-batch requests by a sender thread (so a
// slow server never slows a step), artifacts uploaded through the server's artifact proxy
// (mlflow-artifacts:), and the status set at the end. When the server stops answering,
// training goes on: what is not sent stays queued and goes when it answers again (the run
// log says so once each way); what is still unsent when the run ends is written to
// <run>/mlflow_unsent.txt, one request per line, which a resume of the run sends first (or
// replay it with curl: README, "MLflow").
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "tracking/http.hpp"
#include "tracking/mlflow.hpp"

namespace runner::tracking {

class MlflowServerRun : public MlflowSink {
 public:
  /// Creates a run in `experiment` (created when missing) on the server at `uri`. Throws
  /// Error, one line, when the server does not answer or refuses.
  MlflowServerRun(const std::string& uri, const std::string& experiment, const std::string& run_name,
                  const std::string& unsent_file);
  /// Continues the run whose page is `run_page` (a resumed training run): first sends what
  /// `unsent_file` kept from the run before, then RUNNING again.
  MlflowServerRun(const std::string& run_page, const std::string& unsent_file);
  ~MlflowServerRun() override;

  /// The run's page on the server: <uri>/#/experiments/<id>/runs/<run id>.
  const std::string& run_path() const override { return page_; }
  void param(const std::string& key, const std::string& value) override;
  void tag(const std::string& key, const std::string& value) override;
  void metric(const std::string& key, double value, int64_t step, int64_t timestamp_ms) override;
  void artifact(const std::string& file, const std::string& dest) override;
  void finish(Status status) override;

  /// True when `uri` names a tracking server (http:// or https://).
  static bool is_server(const std::string& uri);

 private:
  struct Entry {
    char kind;  ///< 'p' param, 't' tag, 'm' metric
    std::string key, text;
    double value = 0;
    int64_t step = 0, timestamp = 0;
  };
  void start_sender();
  void stop_sender();
  void sender_loop();
  std::string next_batch(size_t* taken) const;  ///< a log-batch body of the queue's head (lock held)
  void went_down(const std::string& why);
  void replay_unsent();
  void save_unsent(const std::string& method, const std::string& path, const std::string& body);

  HttpClient http_;
  std::string run_id_, experiment_id_, artifact_root_, page_, unsent_file_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry> queue_;
  bool stop_ = false, down_ = false, artifacts_warned_ = false;
  int64_t refused_ = 0;  ///< log-batch requests the server refused (4xx): not retried
  std::thread sender_;
};

}  // namespace runner::tracking
