#pragma once
// Versioning and symbol visibility for the runner plugin SDK.

/// Bumped whenever a type that crosses the plugin boundary changes layout or meaning.
/// A plugin built against another value is refused at load time ("rebuild the plugin").
// 2: metric and handler kinds; 3: Dataflow::train_eval, skip_bad_samples; 4: samples and
// outputs are named tensors (Field, Sample, TensorDict; forward_batch, Criterion::loss)
#define RUNNER_PLUGIN_API_VERSION 4

#define RUNNER_API __attribute__((visibility("default")))
#define RUNNER_HIDDEN __attribute__((visibility("hidden")))

namespace runner {
RUNNER_API const char* version();  ///< the runner's version string, e.g. "0.1.0"
}  // namespace runner
