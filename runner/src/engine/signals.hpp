#pragma once
// SIGTERM, SIGINT, SIGUSR1 (what Slurm sends before preemption) while training: the
// run finishes the current iteration, checkpoints and exits kExitStopped. A second
// SIGINT exits at once.
namespace runner {

/// While alive, the stop signals are caught (and the previous handlers restored after).
class SignalScope {
 public:
  SignalScope();
  ~SignalScope();
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;

 private:
  struct Saved;
  Saved* saved_;
};

/// The stop signal caught since the scope began, or 0.
int pending_stop_signal();

}  // namespace runner
