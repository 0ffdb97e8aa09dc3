#include "engine/loss_meter.hpp"

#include <cmath>

#include "device/host_read.hpp"
#include "dist/sync.hpp"
#include "runner/error.hpp"

namespace runner {

void LossMeter::add(const torch::Tensor& loss_sum, int64_t global_samples) {
  torch::NoGradGuard no_grad;
  const torch::Tensor share = loss_sum.detach().to(torch::kFloat64) / static_cast<double>(global_samples);
  last_ = share;
  if (!running_set_ && has_restored_) {
    running_ = torch::full({}, restored_, share.options());
    running_set_ = true;
  }
  running_ = running_set_ ? running_ * alpha_ + share * (1 - alpha_) : share.clone();
  running_set_ = true;
  ++unread_;
}

const LossMeter::Values& LossMeter::read(Communicator& comm, int64_t iteration, int64_t epoch) {
  if (unread_ == 0) return values_;
  std::vector<double> v;
  {  // on a GPU this waits for every queued kernel, NCCL's included: a dead peer ends here
    Communicator::Watch watch(comm, "reading the loss (waits for the device's queued work)");
    v = device::read_values(torch::stack({last_, running_}));
  }
  if (comm.world_size() > 1) v = comm.allreduce_sum(v);
  values_ = Values{v[0], v[1], true};
  const int64_t since = iteration - unread_ + 1;
  unread_ = 0;
  if (!std::isfinite(values_.running) || !std::isfinite(values_.batch_loss))  // alike on every rank
    agree_on_failure(comm, std::make_exception_ptr(
                               Error("train/batch_loss is not finite (" + std::to_string(values_.batch_loss) +
                                     ", running average " + std::to_string(values_.running) + ") in iterations " +
                                     std::to_string(since) + ".." + std::to_string(iteration) + " (epoch " +
                                     std::to_string(epoch) + "); lower the learning rate or check the data")));
  return values_;
}

void LossMeter::restore(double running, bool set, int rank) {
  values_.running = running;
  values_.running_set = set;
  has_restored_ = set;
  restored_ = rank == 0 ? running : 0.0;  // the ranks' shares sum to the restored value
  running_set_ = false;
  running_ = torch::Tensor();
}

}  // namespace runner
