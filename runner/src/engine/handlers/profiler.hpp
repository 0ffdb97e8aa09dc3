#pragma once
// `profile:` traces `active` iterations after `wait` with LibTorch's Kineto profiler (as
// torch.profiler does) and writes, per rank, <run>/profile/trace_rank<R>.json (Chrome
// trace format: chrome://tracing, Perfetto, TensorBoard's profiler) and ops_rank<R>.txt
// (the busiest operators). Each traced iteration is a "ProfilerStep#N" range and the step's
// parts (forward, backward, optimizer, ...) are ranges inside it (StepTimes::Scope). The
// log line and summary.yaml give the traced iterations' FLOPs as the profiler counts them
// (conv and matmul operators, forward only: training is counted as 3x that, the usual
// convention) and the GFLOP/s achieved.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_kineto.h>

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/options.hpp"
#include "engine/run_state.hpp"
#include "logging/log.hpp"
#include "runner/error.hpp"

namespace runner {

class Profiler : public EngineHandler {
 public:
  /// What the trace measured (rank 0's figures go to summary.yaml).
  struct Figures {
    int64_t iterations = 0;
    double seconds = 0;        ///< inside the traced iterations
    double forward_gflop = 0;  ///< conv/matmul FLOPs the profiler counted, per iteration
    double gflop_per_iteration() const { return 3 * forward_gflop; }  ///< training: 3 x forward
    double gflops() const { return seconds > 0 ? gflop_per_iteration() * iterations / seconds : 0; }
  };

  Profiler(const ProfileOptions& options, RunState& run) : options_(options), run_(run) {}
  ~Profiler() override {
    step_.reset();
    if (active_) torch::autograd::profiler::disableProfiler();  // a failed run: nothing saved
  }

  void attach(Engine& engine) override {
    engine.on(Event::IterationStarted, [this](Engine& e) {
      if (done_ || ++seen_ <= options_.wait) return;
      if (!active_) start();
      step_.emplace(at::RecordScope::USER_SCOPE);
      step_->before("ProfilerStep#" + std::to_string(e.state.iteration));
    });
    engine.on(Event::IterationCompleted, [this](Engine& e) {
      if (!active_) return;
      step_.reset();
      if (++traced_ >= options_.active) stop(e);
    });
    engine.on(Event::Completed, [this](Engine& e) {
      if (active_) stop(e);  // the run was shorter than the window
    });
  }

  const std::optional<Figures>& figures() const { return figures_; }

 private:
  void start() {
    namespace prof = torch::profiler::impl;
    std::set<prof::ActivityType> activities{prof::ActivityType::CPU};
    if (run_.placement.is_cuda())
      activities.insert(prof::ActivityType::CUDA);
    else
      setenv("KINETO_LOG_LEVEL", "5", 0);  // CUDA wheels on a machine without a GPU: no CUPTI error line
    const prof::ProfilerConfig config(prof::ProfilerState::KINETO, options_.record_shapes, /*profile_memory=*/false,
                                      /*with_stack=*/false, /*with_flops=*/options_.record_shapes);
    torch::autograd::profiler::prepareProfiler(config, activities);
    torch::autograd::profiler::enableProfiler(config, activities);
    active_ = true;
  }

  void stop(const Engine& e) {
    step_.reset();
    auto result = torch::autograd::profiler::disableProfiler();
    active_ = false;
    done_ = true;
    const std::string dir = run_.run_dir + "/profile", rank = std::to_string(run_.dist.rank);
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw Error(dir + ": cannot create: " + ec.message());
    const std::string trace = dir + "/trace_rank" + rank + ".json";
    result->save(trace);
    Figures f = summarise(*result, dir + "/ops_rank" + rank + ".txt");
    figures_ = f;
    RLOG_INFO(
        "profile: iterations {}..{} traced to {} ({} ops table beside it); {:.3f} GFLOP per iteration (3 x the {:.3f} "
        "of forward conv/matmul the profiler counted), {:.1f} GFLOP/s in the traced iterations",
        e.state.iteration - f.iterations + 1, e.state.iteration, trace, "ops_rank" + rank + ".txt",
        f.gflop_per_iteration(), f.forward_gflop, f.gflops());
  }

  struct Op {
    int64_t calls = 0;
    double total_ns = 0, flops = 0;
  };

  using Windows = std::vector<std::pair<uint64_t, uint64_t>>;
  static bool inside(const Windows& w, uint64_t t) {
    for (const auto& [a, b] : w)
      if (t >= a && t <= b) return true;
    return false;
  }

  // Step windows from the ProfilerStep ranges; operator times inside them, and the FLOPs of
  // the convolutions and matrix products inside the step's `forward` ranges (backward's
  // matrix products carry FLOP counts too; the convention is 3 x forward).
  Figures summarise(const torch::autograd::profiler::ProfilerResult& result, const std::string& table) {
    Windows steps, forwards;
    for (const auto& ev : result.events()) {
      if (ev.name().rfind("ProfilerStep#", 0) == 0) steps.emplace_back(ev.startNs(), ev.endNs());
      if (ev.name() == StepTimes::kNames[StepTimes::Forward]) forwards.emplace_back(ev.startNs(), ev.endNs());
    }
    auto in_step = [&](uint64_t t) { return inside(steps, t); };
    Figures f;
    f.iterations = static_cast<int64_t>(steps.size());
    for (const auto& [a, b] : steps) f.seconds += static_cast<double>(b - a) * 1e-9;
    std::map<std::string, Op> ops;
    std::map<std::string, uint64_t> counted_until;  // per name: the end of the last event whose FLOPs counted
    double flops = 0;
    std::vector<const torch::autograd::profiler::KinetoEvent*> by_start;
    for (const auto& ev : result.events()) by_start.push_back(&ev);
    std::stable_sort(by_start.begin(), by_start.end(), [](auto* a, auto* b) { return a->startNs() < b->startNs(); });
    for (const auto* e : by_start) {
      const auto& ev = *e;
      if (!in_step(ev.startNs()) || ev.name().rfind("ProfilerStep#", 0) == 0) continue;
      Op& op = ops[ev.name()];
      op.calls += 1;
      op.total_ns += static_cast<double>(ev.durationNs());
      // An operator re-dispatched inside itself (autocast's conv2d calls conv2d) counts once.
      uint64_t& until = counted_until[ev.name()];
      if (ev.flops() == 0 || ev.startNs() < until) continue;
      until = ev.endNs();
      op.flops += static_cast<double>(ev.flops());
      if (is_conv_or_matmul(ev.name()) && inside(forwards, ev.startNs())) flops += static_cast<double>(ev.flops());
    }
    f.forward_gflop = f.iterations > 0 ? flops / 1e9 / static_cast<double>(f.iterations) : 0;
    write_table(ops, f, table);
    return f;
  }

  static bool is_conv_or_matmul(const std::string& name) {
    return name.find("conv") != std::string::npos || name == "aten::mm" || name == "aten::addmm" ||
           name == "aten::bmm" || name == "aten::baddbmm" || name == "aten::matmul";
  }

  static void write_table(const std::map<std::string, Op>& ops, const Figures& f, const std::string& path) {
    std::vector<std::pair<std::string, Op>> rows(ops.begin(), ops.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.total_ns > b.second.total_ns; });
    std::ofstream out(path);
    char line[512];
    std::snprintf(line, sizeof line, "# %lld traced iterations, %.3f s; times include the operators each one calls\n",
                  static_cast<long long>(f.iterations), f.seconds);
    out << line;
    std::snprintf(line, sizeof line, "%-48s %8s %12s %12s %8s %10s\n", "operator", "calls", "total ms", "per call us",
                  "% step", "GFLOP");
    out << line;
    for (size_t i = 0; i < rows.size() && i < 40; ++i) {
      const Op& op = rows[i].second;
      std::snprintf(line, sizeof line, "%-48.48s %8lld %12.3f %12.1f %7.1f%% %10.3f\n", rows[i].first.c_str(),
                    static_cast<long long>(op.calls), op.total_ns / 1e6, op.total_ns / 1e3 / op.calls,
                    f.seconds > 0 ? 100 * op.total_ns * 1e-9 / f.seconds : 0.0, op.flops / 1e9);
      out << line;
    }
  }

  ProfileOptions options_;
  RunState& run_;
  int64_t seen_ = 0, traced_ = 0;
  bool active_ = false, done_ = false;
  std::optional<at::RecordFunction> step_;
  std::optional<Figures> figures_;
};

}  // namespace runner
