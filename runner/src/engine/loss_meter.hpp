#pragma once
// The training loss without host synchronisation: each step adds its loss on the device
// (this rank's sample-weighted share of the global batch's mean, and a running average
// of it); `read` brings both to the host once (one counted read and one host all-reduce
// over ranks) when the console, a checkpoint or a handler needs them, and stops the run
// if a loss since the last read was not finite. Both figures are linear in the ranks'
// shares, so summing each rank's share gives the global batch loss and the running
// average of the global batch losses (alpha 0.98, as Ignite's RunningAverage).
#include <torch/torch.h>

#include "dist/communicator.hpp"

namespace runner {

class LossMeter {
 public:
  explicit LossMeter(double alpha = 0.98) : alpha_(alpha) {}

  /// One step's loss: `loss_sum` is this rank's summed (sample-weighted) loss, on the
  /// loss's device; `global_samples` the global batch's samples. No host read.
  void add(const torch::Tensor& loss_sum, int64_t global_samples);

  struct Values {
    double batch_loss = 0;  ///< the last step's global batch mean loss
    double running = 0;     ///< running average of the global batch losses
    bool running_set = false;
  };
  /// The current values, alike on every rank (every rank must call it at the same
  /// iteration). Reads once per new step added; then free. Throws if not finite.
  const Values& read(Communicator& comm, int64_t iteration, int64_t epoch);
  /// The values as of the last read (or restore); no read.
  const Values& values() const { return values_; }
  /// Restores the running average a checkpoint holds (every rank calls it).
  void restore(double running, bool set, int rank);
  /// Steps added since the last read (0: the values are current).
  int64_t unread() const { return unread_; }

 private:
  double alpha_;
  torch::Tensor last_, running_;  ///< this rank's shares, float64 on the loss's device
  bool running_set_ = false;
  double restored_ = 0;  ///< rank 0's share of a restored running average
  bool has_restored_ = false;
  int64_t unread_ = 0;
  Values values_;
};

}  // namespace runner
