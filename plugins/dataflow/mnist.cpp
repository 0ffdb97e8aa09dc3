// MNIST handwritten digits (IDX files). No horizontal flip by default: digits are not symmetric.
#include <runner/plugin.hpp>

#include "idx_images.hpp"

namespace {
runner::Schema schema() { return runner::plugins::idx_dataflow_schema("", 0.1307, 0.3081, false); }
runner::Dataflow make(const runner::Params& p, const runner::DataflowContext&) {
  return runner::plugins::make_idx_dataflow(p, "MNIST");
}
}  // namespace

RUNNER_REGISTER_DATAFLOW("mnist", "MNIST 28x28 grayscale digits, 10 classes (IDX files, .gz or plain)", schema, make)
