#pragma once
// `runner predict RUN_DIR --input x.npy --output y.npy`: a trained model's float32 outputs
// for given inputs. The run's config rebuilds the model, in float32 and eval mode, on the run's
// device (or --device);
// the input array is the model's "input" field for N samples, [N, ...field shape].
#include <ostream>
#include <string>

#include "config/config.hpp"
#include "registry/registry.hpp"

namespace runner::cli {

struct PredictRequest {
  std::string run_dir, input, output;
  std::string checkpoint = "best";  ///< best | last | a weights, checkpoint or .safetensors file
  int64_t batch = 64;               ///< samples per forward pass
  std::string device;               ///< --device: auto | cpu | cuda; "" the run's (run_placement)
};

/// Writes the model's "logits" (or its only output) for every input sample to request.output.
void predict(const PredictRequest& request, const RunConfig& config, const Registry& registry, std::ostream& log);

}  // namespace runner::cli
