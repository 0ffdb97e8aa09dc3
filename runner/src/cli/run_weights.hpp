#pragma once
// A finished run's model again, for `runner eval`, `predict` and `sample`: the run's own
// config rebuilds it on the run's device (or --device); the weights come from the best model,
// the newest checkpoint or a file, copied onto that device whatever device saved them.
#include <torch/torch.h>

#include <ostream>
#include <string>

#include "config/config.hpp"
#include "device/device.hpp"

namespace runner::cli {

/// "best": the run's best model by its `best:` rule (best/*.pt), else the newest checkpoint;
/// "last": the newest checkpoint; anything else: that file. `cmd` prefixes errors.
std::string weights_file(const std::string& run_dir, const std::string& which, const RunConfig& config,
                         const std::string& cmd);

/// Where the command computes: `flag` (--device: auto, cpu or cuda) when given, else the run's
/// own `device:`; a run trained with `device: cuda` goes on the CPU where no GPU is usable here,
/// with a note on `log`. `autocast`: the command runs the run's `amp:`, so an fp16 run on the
/// CPU is a ConfigError. The run's kernel flags (deterministic, fused_kernels; on a GPU tf32) go
/// with it.
device::Placement run_placement(const RunConfig& config, const std::string& flag, const std::string& cmd, bool autocast,
                                std::ostream& log);

/// Loads a model archive (.pt: best models, ema_model.pt), a checkpoint's model (.ckpt) or a
/// state dict (.safetensors: every parameter and buffer by name and shape, nothing left over).
/// Read on the CPU and copied into the model's tensors, which keep their device (a GPU run's
/// weights load on a CPU-only machine), strictly by name and shape as load_state says.
void load_weights(torch::nn::Module& model, const std::string& path, const std::string& cmd);

}  // namespace runner::cli
