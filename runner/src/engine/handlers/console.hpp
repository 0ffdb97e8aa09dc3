#pragma once
// What the console and the metrics record see of training: epoch timing, the progress
// bar on a terminal, and every log_every_iters iterations one line (train/batch_loss,
// lr, speed, ETA) plus a metrics row and the throughput since the last one.
#include <cmath>
#include <cstdio>

#include "engine/run_state.hpp"
#include "logging/log.hpp"

namespace runner {

class Console : public EngineHandler {
 public:
  Console(int64_t log_every_iters, int64_t global_batch, RunState& run)
      : every_(log_every_iters), global_batch_(global_batch), run_(run) {}

  void attach(Engine& engine) override {
    engine.on(Event::EpochStarted, [this](Engine& e) {
      t_epoch_ = last_log_time_ = clock::now();
      last_log_iteration_ = e.state.iteration;
    });
    if (run_.progress.tty()) engine.on(Event::IterationCompleted, [this](Engine& e) { bar(e); });
    engine.on(
        Event::IterationCompleted, [this](Engine& e) { log(e); }, every_);
    engine.on(Event::EpochCompleted, [this](Engine&) {  // before validation: training time only
      device::synchronize(run_.placement);              // the epoch's queued kernels count too
      run_.train_seconds += std::chrono::duration<double>(clock::now() - t_epoch_).count();
    });
    engine.on(Event::Exception, [this](Engine&) { run_.progress.clear(); });
  }

 private:
  using clock = RunState::clock;

  void rate(const Engine& e, double* it_per_s, double* eta) const {
    const double dt = std::chrono::duration<double>(clock::now() - t_epoch_).count();
    *it_per_s = dt > 0 ? e.state.epoch_iteration / dt : 0;
    const int64_t left = (e.state.max_epochs - e.state.epoch + 1) * e.state.epoch_length - e.state.epoch_iteration;
    *eta = *it_per_s > 0 ? left / *it_per_s : NAN;
  }

  void bar(const Engine& e) {
    double ips, eta;
    rate(e, &ips, &eta);
    run_.progress.bar(e.state.epoch, e.state.max_epochs, e.state.epoch_iteration, e.state.epoch_length, ips, eta,
                      run_.loss.values().running, run_.lr);  // as of the last log line: the bar reads nothing
  }

  void log(const Engine& e) {
    const LossMeter::Values& loss = run_.read_loss(e);
    double ips, eta;
    rate(e, &ips, &eta);
    if (run_.recorder) {
      run_.recorder->log(e.state.iteration, e.state.epoch, {{"train/batch_loss", loss.batch_loss}, {"lr", run_.lr}});
      const double dt = std::chrono::duration<double>(clock::now() - last_log_time_).count();
      if (dt > 0 && e.state.iteration > last_log_iteration_)
        run_.recorder->throughput(e.state.iteration, static_cast<double>(e.state.iteration - last_log_iteration_) *
                                                         static_cast<double>(global_batch_) / dt);
      last_log_time_ = clock::now();
      last_log_iteration_ = e.state.iteration;
    }
    char line[256];
    std::snprintf(line, sizeof line, "epoch %ld/%ld iter %ld/%ld | loss %.4f (avg %.4f) | lr %.5g | %.1f it/s, ETA %s",
                  long(e.state.epoch), long(e.state.max_epochs), long(e.state.epoch_iteration),
                  long(e.state.epoch_length), loss.batch_loss, loss.running, run_.lr, ips,
                  format_duration(eta).c_str());
    if (run_.progress.tty())
      log::to_file(line);
    else
      RLOG_INFO("{}", line);
  }

  int64_t every_, global_batch_;
  RunState& run_;
  clock::time_point t_epoch_ = clock::now(), last_log_time_ = t_epoch_;
  int64_t last_log_iteration_ = 0;
};

}  // namespace runner
