// Fashion-MNIST (Zalando), as Debian's dataset-fashion-mnist installs it.
#include <runner/plugin.hpp>

#include "idx_images.hpp"

namespace {
runner::Schema schema() {
  return runner::plugins::idx_dataflow_schema("/usr/share/datasets/fashion-mnist", 0.2860, 0.3530, true);
}
runner::Dataflow make(const runner::Params& p, const runner::DataflowContext&) {
  return runner::plugins::make_idx_dataflow(p, "Fashion-MNIST");
}
}  // namespace

RUNNER_REGISTER_DATAFLOW("fashion_mnist", "Fashion-MNIST 28x28 grayscale, 10 classes (IDX files, .gz or plain)", schema,
                         make)
