#pragma once
// `runner sample RUN_DIR`: text from a trained language model. The run's own config
// rebuilds the model (and its dataflow, for the block size); the weights come from the
// best model (`best/`), the newest checkpoint or a given file; the run's vocab.yaml maps
// characters to token ids and back. Sampling is autoregressive over the last block_size
// tokens, with a temperature and an optional top-k, seeded.
#include <cstdint>
#include <ostream>
#include <string>

#include "config/config.hpp"
#include "registry/registry.hpp"

namespace runner::cli {

struct SampleRequest {
  std::string run_dir;
  std::string prompt;
  std::string checkpoint = "best";  ///< best | last | a weights or checkpoint file
  int64_t tokens = 200;
  double temperature = 0.8;  ///< 0: always the most likely token
  int64_t top_k = 0;         ///< 0: every token
  uint64_t seed = 0;
  std::string device;  ///< --device: auto | cpu | cuda; "" the run's (run_placement)
};

/// Writes the prompt and the generated text to `out`; `config` is the run's config.
void sample_text(const SampleRequest& request, const RunConfig& config, const Registry& registry, std::ostream& out);

}  // namespace runner::cli
