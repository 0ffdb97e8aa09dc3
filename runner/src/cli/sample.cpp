#include "cli/sample.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli/run_weights.hpp"
#include "engine/build.hpp"
#include "runner/error.hpp"

namespace runner::cli {
namespace fs = std::filesystem;

namespace {

struct Vocab {
  std::vector<std::string> tokens;  ///< id -> text (one character each, UTF-8)
  std::map<std::string, int64_t> ids;
  int64_t unknown = 0;
};

Vocab read_vocab(const std::string& run_dir) {
  const std::string path = run_dir + "/vocab.yaml";
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw ConfigError("sample: " + run_dir +
                      " has no vocab.yaml: only a run whose dataflow writes a vocabulary "
                      "(e.g. dataflow: text) can be sampled");
  Vocab v;
  try {
    const YAML::Node n = YAML::LoadFile(path);
    v.tokens = n["tokens"].as<std::vector<std::string>>();
    const std::string unknown = n["unknown"] ? n["unknown"].as<std::string>() : "";
    for (size_t i = 0; i < v.tokens.size(); ++i) v.ids.emplace(v.tokens[i], static_cast<int64_t>(i));
    if (v.ids.count(unknown)) v.unknown = v.ids.at(unknown);
  } catch (const YAML::Exception& e) {
    throw ConfigError("sample: " + path + ": expected `tokens: [...]`: " + e.what());
  }
  if (v.tokens.empty()) throw ConfigError("sample: " + path + ": tokens: is empty");
  return v;
}

// UTF-8 characters of `s` (a malformed byte is a character of its own, then unknown).
std::vector<std::string> characters(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    len = std::min(len, s.size() - i);
    out.push_back(s.substr(i, len));
    i += len;
  }
  return out;
}

// The next token from logits [V]: greedy at temperature 0, else softmax(logits / t) over
// the top k.
int64_t draw(torch::Tensor logits, const SampleRequest& r, Rng& rng) {
  if (r.temperature <= 0) return logits.argmax().item<int64_t>();
  logits = logits.to(torch::kFloat64) / r.temperature;
  if (r.top_k > 0 && r.top_k < logits.size(0)) {
    const double kth = std::get<0>(logits.topk(r.top_k)).min().item<double>();
    logits = logits.masked_fill(logits < kth, -INFINITY);
  }
  const torch::Tensor p = torch::softmax(logits, 0).contiguous();
  const double* prob = p.data_ptr<double>();
  double u = rng.uniform(), acc = 0;
  for (int64_t i = 0; i < p.size(0); ++i)
    if ((acc += prob[i]) > u) return i;
  return p.size(0) - 1;
}

}  // namespace

void sample_text(const SampleRequest& r, const RunConfig& config, const Registry& registry, std::ostream& out) {
  const Vocab vocab = read_vocab(r.run_dir);
  const device::Placement placement = run_placement(config, r.device, "sample", /*autocast=*/false, std::cerr);
  Components c = build_components(config, registry, DataflowContext{config.run.seed, 0, 1}, placement.device);
  int64_t block = 0;
  for (const Field& f : c.dataflow.train->fields())
    if (f.name == "input" && f.shape.size() == 1) block = f.shape[0];
  if (block < 1) throw ConfigError("sample: the run's dataflow has no token sequence field \"input\" [T]");
  if (c.dataflow.num_classes != static_cast<int64_t>(vocab.tokens.size()))
    throw ConfigError("sample: " + r.run_dir + "/vocab.yaml has " + std::to_string(vocab.tokens.size()) +
                      " tokens, the run's dataflow now makes " + std::to_string(c.dataflow.num_classes) +
                      " (its text files changed?)");
  const std::string weights = weights_file(r.run_dir, r.checkpoint, config, "sample");
  load_weights(*c.model, weights, "sample");
  std::cerr << "sample: weights " << weights << "\n";

  std::vector<int64_t> ids;
  for (const std::string& ch : characters(r.prompt)) {
    auto it = vocab.ids.find(ch);
    ids.push_back(it == vocab.ids.end() ? vocab.unknown : it->second);
  }
  if (ids.empty()) ids.push_back(vocab.ids.count("\n") ? vocab.ids.at("\n") : 0);
  torch::NoGradGuard no_grad;
  c.model->eval();
  Rng rng(r.seed);
  out << r.prompt;
  for (int64_t i = 0; i < r.tokens; ++i) {
    const int64_t from = std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - block);
    const torch::Tensor context = torch::tensor(std::vector<int64_t>(ids.begin() + from, ids.end()), torch::kInt64)
                                      .unsqueeze(0)
                                      .to(placement.device);
    const TensorDict outputs = c.model->forward_batch({{"input", context}});
    const torch::Tensor& logits = at(outputs, "logits", "sample (of the model's outputs)");
    ids.push_back(
        draw(logits[0].select(-1, logits.size(2) - 1).to(torch::kCPU), r, rng));  // [N, V, T] -> the last position
    out << vocab.tokens.at(static_cast<size_t>(ids.back())) << std::flush;
  }
  out << "\n";
}

}  // namespace runner::cli
