#include "cli/predict.hpp"

#include "cli/run_weights.hpp"
#include "engine/build.hpp"
#include "engine/precision.hpp"
#include "runner/arrays.hpp"
#include "runner/error.hpp"

namespace runner::cli {

namespace {
// The input array as the model's "input" field: its per-sample shape, its dtype (float64
// arrays are taken as float32).
torch::Tensor read_input(const std::string& path, const Fields& fields) {
  const Field* input = nullptr;
  for (const Field& f : fields)
    if (f.name == "input") input = &f;
  if (!input) throw ConfigError("predict: the run's dataflow has no \"input\" field");
  torch::Tensor x;
  try {
    x = read_npy(path);
  } catch (const Error& e) {
    throw ConfigError(std::string("predict: --input: ") + e.what());
  }
  const std::vector<int64_t> sample(x.sizes().begin() + (x.dim() > 0 ? 1 : 0), x.sizes().end());
  if (x.dim() < 1 || sample != input->shape) {
    std::string want;
    for (int64_t d : input->shape) want += ", " + std::to_string(d);
    throw ConfigError("predict: --input: " + path + " has shape " + c10::str(x.sizes()) + "; the model takes [N" +
                      want + "]");
  }
  if (x.is_floating_point() != c10::isFloatingType(input->dtype))
    throw ConfigError("predict: --input: " + path + " is " + c10::toString(x.scalar_type()) + ", the model takes " +
                      c10::toString(input->dtype));
  return x.to(input->dtype);
}
}  // namespace

void predict(const PredictRequest& r, const RunConfig& config, const Registry& registry, std::ostream& log) {
  const device::Placement placement = run_placement(config, r.device, "predict", /*autocast=*/false, log);
  Components c = build_components(config, registry, DataflowContext{config.run.seed, 0, 1}, placement.device);
  const torch::Tensor x = read_input(r.input, c.dataflow.train->fields());
  const std::string weights = weights_file(r.run_dir, r.checkpoint, config, "predict");
  load_weights(*c.model, weights, "predict");
  if (config.step.channels_last) to_channels_last(*c.model);  // as the run trained and validated
  torch::NoGradGuard no_grad;
  c.model->eval();
  std::vector<torch::Tensor> parts;
  for (int64_t lo = 0; lo < x.size(0); lo += r.batch) {
    const int64_t hi = std::min(x.size(0), lo + r.batch);
    const TensorDict inputs{{"input", x.slice(0, lo, hi).to(placement.device)}};
    const TensorDict outputs = c.model->forward_batch(model_inputs(inputs, 0, hi - lo, config.step.channels_last));
    auto it = outputs.find("logits");
    if (it == outputs.end() && outputs.size() != 1)
      throw ConfigError("predict: the model returns several outputs and none is \"logits\"");
    parts.push_back((it != outputs.end() ? it->second : outputs.begin()->second).to(torch::kCPU, torch::kFloat32));
  }
  const torch::Tensor y = parts.empty() ? torch::empty({0}) : torch::cat(parts);
  write_npy(r.output, y);
  log << "predict: " << x.size(0) << " samples through " << weights << " -> " << r.output << " " << c10::str(y.sizes())
      << "\n";
}

}  // namespace runner::cli
