#pragma once
// A finished run's model again, for `runner sample` and `runner predict`: the run's own
// config rebuilds it; the weights come from the best model, the newest checkpoint or a file.
#include <torch/torch.h>

#include <string>

#include "config/config.hpp"

namespace runner::cli {

/// "best": the run's best model by its `best:` rule (best/*.pt), else the newest checkpoint;
/// "last": the newest checkpoint; anything else: that file. `cmd` prefixes errors.
std::string weights_file(const std::string& run_dir, const std::string& which, const RunConfig& config,
                         const std::string& cmd);

/// Loads a model archive (.pt: best models, ema_model.pt), a checkpoint's model (.ckpt) or a
/// state dict (.safetensors: every parameter and buffer by name and shape, nothing left over).
void load_weights(torch::nn::Module& model, const std::string& path, const std::string& cmd);

}  // namespace runner::cli
