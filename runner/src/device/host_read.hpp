#pragma once
// Every read of a device value by the host in the training path goes through here: on a
// GPU each one waits for the queued kernels (a host synchronisation), so they are counted
// (`host_reads`, reported in summary.yaml) and the steady-state step makes none: the loss
// is read once per log interval (engine/loss_meter.hpp).
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace runner::device {

/// The values of `t` (any dtype, any device) as doubles: one counted read.
std::vector<double> read_values(const torch::Tensor& t);
/// A one-element tensor's value: one counted read.
double read_value(const torch::Tensor& t);
/// Reads so far in this process.
int64_t host_reads();
/// Seconds spent in them (on a GPU: mostly waiting for the device's queued work).
double host_read_seconds();

}  // namespace runner::device
