// The built-in sgd's three CPU steps on the same parameters: LibTorch's operators
// (torch::optim::SGD), runner's one pass (the CPU default, plugins/optimizers/one_pass_sgd.hpp)
// and ATen's _fused_sgd_ (`fused: true`). Nesterov momentum 0.9, weight decay 5e-4, as the
// recipes. Milliseconds per step, interleaved in rounds (this machine's noise), and whether the
// one-pass parameters equal LibTorch's bit for bit after the same steps.
//   build/bin/runner_sgd_bench [--threads N] [--steps N]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "../../plugins/optimizers/fused.hpp"
#include "../../plugins/optimizers/one_pass_sgd.hpp"
#include "util/system.hpp"

namespace {

using Shapes = std::vector<std::vector<int64_t>>;

struct Model {
  std::string name;
  Shapes shapes;
};

std::vector<torch::Tensor> parameters(const Shapes& shapes) {
  torch::manual_seed(3);
  std::vector<torch::Tensor> ps;
  for (const auto& s : shapes) {
    torch::Tensor p = torch::randn(s).requires_grad_(true);
    p.mutable_grad() = torch::randn(s);
    ps.push_back(p);
  }
  return ps;
}

std::unique_ptr<torch::optim::Optimizer> make(int kind, const std::vector<torch::Tensor>& ps) {
  const auto o = torch::optim::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(5e-4);
  if (kind == 0) return std::make_unique<torch::optim::SGD>(ps, o);
  if (kind == 1) return std::make_unique<runner::plugins::OnePassSGD>(ps, o);
  return std::make_unique<runner::plugins::FusedSGD>(ps, o);
}

double ms_per_step(torch::optim::Optimizer& opt, int steps) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) opt.step();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / steps;
}

void run(const Model& m, int steps) {
  std::vector<std::vector<torch::Tensor>> ps;
  std::vector<std::unique_ptr<torch::optim::Optimizer>> opts;
  for (int k = 0; k < 3; ++k) {
    ps.push_back(parameters(m.shapes));
    opts.push_back(make(k, ps.back()));
    opts.back()->step();  // the momentum buffers exist from here on
  }
  double best[3] = {1e30, 1e30, 1e30};
  for (int round = 0; round < 5; ++round)
    for (int k = 0; k < 3; ++k) best[k] = std::min(best[k], ms_per_step(*opts[k], steps));
  bool equal = true;
  for (size_t i = 0; i < ps[0].size(); ++i) equal = equal && torch::equal(ps[0][i], ps[1][i]);
  int64_t values = 0;
  for (const auto& p : ps[0]) values += p.numel();
  std::printf("%-10s %11lld %10.3f %10.3f %10.3f %10.2fx %10s\n", m.name.c_str(), static_cast<long long>(values),
              best[0], best[1], best[2], best[0] / best[1], equal ? "yes" : "NO");
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 0, steps = 200;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--threads") == 0)
      threads = std::stoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--steps") == 0)
      steps = std::max(1, std::stoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "usage: %s [--threads N] [--steps N]\n", argv[0]);
      return 2;
    }
  }
  runner::keep_freed_memory();
  std::printf("threads %d | best of 5 rounds of %d steps each | milliseconds per step\n",
              runner::configure_threads(threads, 1), steps);
  std::printf("%-10s %11s %10s %10s %10s %11s %10s\n", "model", "values", "LibTorch", "one pass", "ATen fused",
              "speed-up", "identical");
  const std::vector<Model> models{
      {"mlp", {{512, 784}, {512}, {512, 512}, {512}, {10, 512}, {10}}},
      // resnet8's 3x3 convolutions (16-32-64 channels), its BatchNorms and head, roughly
      {"resnet8", {{16, 1, 3, 3},  {16},           {16},           {16, 16, 3, 3}, {16},
                   {16},           {16, 16, 3, 3}, {16},           {16},           {32, 16, 3, 3},
                   {32},           {32},           {32, 32, 3, 3}, {32},           {32},
                   {32, 16, 1, 1}, {64, 32, 3, 3}, {64},           {64},           {64, 64, 3, 3},
                   {64},           {64},           {64, 32, 1, 1}, {10, 64},       {10}}},
      // one 4096 x 4096 matrix beside its bias: a step that streams from memory
      {"16M", {{4096, 4096}, {4096}}}};
  for (const Model& m : models) run(m, m.name == "16M" ? std::max(1, steps / 20) : steps);
  return 0;
}
