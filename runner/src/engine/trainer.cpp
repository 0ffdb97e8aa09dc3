// The Trainer: builds a run from its config, wires the handlers that make up training
// (attach_handlers: the one place), runs the engine and reports. The step itself is
// engine/step.cpp; each feature is a handler in engine/handlers/.
#include "engine/trainer.hpp"

#include <unistd.h>

#include <cmath>
#include <ctime>
#include <optional>
#include <filesystem>
#include <memory>

#include "device/cuda.hpp"
#include "data/prefetch.hpp"
#include "device/host_read.hpp"
#include "dist/reducer.hpp"
#include "dist/sync.hpp"
#include "engine/build.hpp"
#include "engine/checkpointing.hpp"
#include "engine/handlers/checkpoints.hpp"
#include "engine/handlers/console.hpp"
#include "engine/handlers/ema_update.hpp"
#include "engine/handlers/fault_injection.hpp"
#include "engine/handlers/lr_schedule.hpp"
#include "engine/handlers/max_time.hpp"
#include "engine/handlers/plugin_handlers.hpp"
#include "engine/handlers/profiler.hpp"
#include "engine/handlers/report.hpp"
#include "engine/handlers/step_timing.hpp"
#include "engine/handlers/validation.hpp"
#include "engine/precision.hpp"
#include "engine/run_state.hpp"
#include "engine/step.hpp"
#include "logging/log.hpp"
#include "runner/error.hpp"
#include "runner/nn.hpp"
#include "util/strings.hpp"
#include "tracking/metrics_log.hpp"
#include "util/files.hpp"
#include "util/system.hpp"

namespace fs = std::filesystem;

namespace runner {
namespace {

std::string create_run_folder(const RunConfig& config, const DistInfo& dist) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  const std::string base = (fs::path(config.run.output_path) / config.name /
                            (std::string(stamp) + "_" + config.component(Kind::Model).name + "_" + dist.backend + "-" +
                             std::to_string(dist.world_size)))
                               .string();
  std::string dir = base;
  std::error_code ec;
  fs::create_directories(fs::path(base).parent_path(), ec);
  if (ec)
    throw Error(fs::path(base).parent_path().string() + ": cannot create the run folder's parent: " + ec.message());
  for (int i = 2; !fs::create_directory(dir, ec); ++i) {  // two runs in the same second
    if (ec) throw Error(dir + ": cannot create run folder: " + ec.message());
    dir = base + "-" + std::to_string(i);
  }
  return dir;
}

class Trainer {
 public:
  Trainer(const RunConfig& config, const Registry& registry, Communicator& comm, const device::Placement& placement)
      : config_(config), registry_(registry), comm_(comm), config_yaml_(config::emit(config.tree)) {
    run_.dist = comm.info();
    run_.dist.backend = comm.backend();
    run_.comm = &comm;
    run_.placement = placement;
  }
  TrainResult run();

 private:
  void build();
  void synchronise_model();
  void open_run_folder();
  void make_reducer();
  std::optional<std::string> restarted_run(const std::string& runs_root);
  void attach_handlers();
  template <class H, class... Args>
  H& add(Args&&... args);
  void restore_position(Engine& engine);
  TrainerPosition position(const Engine& e) const;
  std::string save_checkpoint(const Engine& e);
  tracking::Facts facts(const Engine& e) const;
  void print_banner() const;
  void print_summary(const Engine& e, TrainResult& result);
  void print_achieved(double samples_per_second);
  void print_final_lines(const TrainResult& result, double wall) const;
  void export_ema();
  void record_finish(const std::string& status, const Engine& e, const tracking::Values& summary);
  tracking::Values summary_values(const Engine& e, double samples_per_second, double wait_share, double wall) const;
  /// Per rank: the profiled FLOPs per iteration at the whole training loop's iteration rate.
  double achieved_gflops(const Profiler::Figures& p, double samples_per_second) const {
    return p.gflop_per_iteration() * samples_per_second / static_cast<double>(setup_->c.dataflow.batch_size);
  }

  const RunConfig& config_;
  const Registry& registry_;
  Communicator& comm_;
  const std::string config_yaml_;
  int threads_ = 0;
  RunState run_;
  std::unique_ptr<Setup> setup_;
  std::unique_ptr<SyncBatchNormScope> sync_bn_;
  std::unique_ptr<GradReducer> reducer_;
  std::unique_ptr<Ema> ema_;  ///< `ema:`
  device::PeakRates peak_;    ///< with `profile:`: measured matmul and convolution rates (MFU: the higher)
  std::unique_ptr<Resumed> resumed_;
  std::unique_ptr<tracking::Recorder> recorder_;  ///< rank 0: metrics.jsonl/csv, tb/, MLflow, report.html
  std::vector<NamedHandler> plugin_handlers_;
  std::unique_ptr<DevicePrefetcher> batches_;  ///< the train loader's batches, on the device
  std::unique_ptr<TrainStep> step_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::unique_ptr<EngineHandler>> handlers_;
  Validation* validation_ = nullptr;
  Profiler* profiler_ = nullptr;  ///< `profile:`
};

// ---- the wiring: every feature of training, in the order it acts on each event.
void Trainer::attach_handlers() {
  Setup& s = *setup_;
  Components& c = s.c;
  auto& timing = add<StepTiming>(run_);  // first on IterationStarted...
  if (config_.profile) profiler_ = &add<Profiler>(*config_.profile, run_);
  add<Report>(run_);
  add<LrSchedule>(*s.scheduler, *c.optimizer, run_);
  if (ema_) add<EmaUpdate>(*ema_);
  add<Console>(config_.run.log_every_iters, c.dataflow.batch_size, run_);
  validation_ =
      &add<Validation>(config_.run.validate_every, config_.best, config_.early_stopping, *c.model, *c.criterion,
                       Validation::Sets{s.val_loader.get(), s.train_eval_loader.get(), ema_.get()}, s.metrics,
                       config_.step, comm_, run_);
  add<FaultInjection>(config_.faults, run_.dist.rank, *validation_);
  add<MaxTime>(config_.run.max_time_seconds(), config_.run.max_time.value_or(""), run_);
  add<Checkpoints>(
      config_.checkpoint.checkpoint_every, [this](const Engine& e) { return save_checkpoint(e); }, run_);
  add<PluginHandlers>(std::move(plugin_handlers_), *c.model, run_);
  timing.attach_last(*engine_);  // ...and last on IterationCompleted
}

template <class H, class... Args>
H& Trainer::add(Args&&... args) {
  auto h = std::make_unique<H>(std::forward<Args>(args)...);
  H& ref = *h;
  h->attach(*engine_);
  handlers_.push_back(std::move(h));
  return ref;
}

TrainResult Trainer::run() {
  threads_ = configure_threads(config_.run.threads, run_.dist.local_size);
  if (config_.step.deterministic) at::globalContext().setDeterministicAlgorithms(true, false);
  device::configure_kernels(run_.placement, config_.step.deterministic, config_.step.tf32);
  runner::nn::detail::set_fused_batchnorm_relu(config_.step.fused_kernels);
  build();
  synchronise_model();
  open_run_folder();
  make_reducer();
  print_banner();
  step_ = std::make_unique<TrainStep>(config_.step, run_.placement.device, setup_->c, reducer_.get(), comm_, run_);
  batches_ = std::make_unique<DevicePrefetcher>(*setup_->train_loader, device::make_transfer(run_.placement.device));
  engine_ = std::make_unique<Engine>([this](Engine& e, Batch& b) { (*step_)(e, b); });
  run_.facts = [this](const Engine& e) { return facts(e); };
  run_.progress = Progress(run_.dist.is_main() && run_.dist.world_size == 1 && isatty(STDOUT_FILENO));
  attach_handlers();
  restore_position(*engine_);
  try {
    engine_->run(*batches_, config_.run.num_epochs);
  } catch (const Stopped&) {
    record_finish("stopped", *engine_, {});
    throw;
  } catch (...) {
    record_finish("failed", *engine_, {});
    throw;
  }
  TrainResult result;
  print_summary(*engine_, result);
  return result;
}

// Any failure here leaves nothing behind; every rank agrees on it.
void Trainer::build() {
  collectively(comm_, [&] {
    if (const std::string why = amp_unsupported(config_.step.amp, run_.placement.device); !why.empty())
      throw ConfigError(config_.tree.find("amp")->loc.str() + ": amp: " + why);
    setup_ = build_setup(config_, registry_, run_.dist, run_.placement);
    if (config_.step.cuda_graph)
      if (const std::string why =
              cuda_graph_unsupported(config_.step, *setup_->c.optimizer, run_.placement.device, run_.dist.world_size);
          !why.empty())
        throw ConfigError(config_.tree.find("cuda_graph")->loc.str() + ": cuda_graph: " + why);
  });
  if (config_.step.channels_last) to_channels_last(*setup_->c.model);
}

// The same start on every rank (rank 0's parameters and buffers), SyncBN, the weight average.
void Trainer::synchronise_model() {
  Model& model = *setup_->c.model;
  if (log::verbose() && run_.dist.world_size > 1)
    RLOG_DEBUG("initial weights hash {} (before the broadcast from rank 0)", module_hash(model));
  broadcast_module(comm_, model, true, true);
  if (config_.dist.sync_batchnorm)
    collectively(comm_, [&] {
      sync_bn_ = enable_sync_batchnorm(comm_, model, config_.tree.find("dist")->find("sync_batchnorm")->loc.str());
    });
  if (config_.ema) ema_ = std::make_unique<Ema>(model, config_.ema->decay);  // after placement, layout, broadcast
}

// The gradient buckets and their hooks, on the parameters as they train: after a resume
// loaded them (hooks added before that never fired again: every bucket then went at the
// end of backward, none overlapped with it).
void Trainer::make_reducer() {
  if (run_.dist.world_size > 1)
    reducer_ =
        std::make_unique<GradReducer>(setup_->c.trainable, comm_, static_cast<int64_t>(config_.dist.bucket_mb * 1e6));
}

// A restarted torchrun job (TORCHELASTIC_RESTART_COUNT > 0) or requeued Slurm job
// (SLURM_RESTART_COUNT > 0): the run folder its first attempt made, found by rank 0
// through launch.yaml, or none (nothing checkpointed yet).
std::optional<std::string> Trainer::restarted_run(const std::string& runs_root) {
  std::string dir;
  collectively(comm_, [&] {
    if (!run_.dist.is_main()) return;
    dir = find_launch_run(runs_root, run_.dist.launch_id);
    if (dir.empty())
      RLOG_WARN("restart {} of {}: no run folder of this job holds a checkpoint yet; starting from the beginning",
                run_.dist.restart, run_.dist.launch_id);
    else
      RLOG_INFO("restart {} of {}: continuing {} from its last checkpoint", run_.dist.restart, run_.dist.launch_id,
                dir);
  });
  dir = comm_.broadcast(dir, 0);
  if (dir.empty()) return std::nullopt;
  return dir;
}

// Resume (the same state on every rank, from the checkpoint rank 0 found), then the run
// folder (rank 0 writes it; a resumed run continues in its own), then the config's handlers.
void Trainer::open_run_folder() {
  Components& c = setup_->c;
  const CheckpointOptions& ck = config_.checkpoint;
  const std::string runs_root = (fs::path(config_.run.output_path) / config_.name).string();
  std::optional<std::string> from = ck.resume_from;
  if (!from && run_.dist.restart > 0) from = restarted_run(runs_root);
  if (from)
    resumed_ = std::make_unique<Resumed>(resume(
        comm_, ResumeRequest{*from, runs_root, ck.resume_allow_changes, &config_.tree},
        TrainingObjects{*c.model, *c.optimizer, *setup_->scheduler, run_.placement, ema_.get(), &c.dataflow.files}));
  collectively(comm_, [&] {
    if (!run_.dist.is_main()) return;
    if (resumed_) {
      run_.run_dir = resumed_->run_dir;
      tracking::truncate_metrics(run_.run_dir, resumed_->position.iteration);
    } else {
      run_.run_dir = create_run_folder(config_, run_.dist);
      util::write_text(run_.run_dir + "/config.yaml", config_yaml_);
      util::write_text(run_.run_dir + "/model_summary.txt", setup_->summary);
      YAML::Emitter ov;  // how the run was started: the command and its overrides, as given
      ov << YAML::BeginMap << YAML::Key << "command" << YAML::Value << config_.command_line << YAML::Key << "overrides"
         << YAML::Value << YAML::Flow << config_.overrides << YAML::EndMap;
      util::write_text(run_.run_dir + "/overrides.yaml", std::string(ov.c_str()) + "\n");
      if (!run_.dist.launch_id.empty())
        util::write_text(run_.run_dir + "/launch.yaml",
                         launch_yaml(run_.dist.launcher, run_.dist.launch_id, run_.dist.world_size));
    }
    for (const auto& [name, text] : setup_->c.dataflow.files) util::write_text(run_.run_dir + "/" + name, text);
    log::add_file(run_.run_dir + "/run.log");
    recorder_ = std::make_unique<tracking::Recorder>(
        config_.tracking, tracking::Recorder::RunInfo{config_.path, config_yaml_, setup_->summary}, run_.run_dir,
        setup_->logged, resumed_ ? resumed_->position.iteration : -1);
  });
  run_.run_dir = comm_.broadcast(run_.run_dir, 0);  // decided on rank 0
  log::set_run_log(run_.run_dir + "/run.log");
  run_.recorder = recorder_.get();
  collectively(comm_, [&] {
    plugin_handlers_ = build_handlers(config_, registry_,
                                      HandlerContext{run_.dist.rank, run_.dist.world_size, run_.run_dir,
                                                     setup_->iters_per_epoch, setup_->total_iters});
  });
}

void Trainer::restore_position(Engine& engine) {
  if (!resumed_) return;
  const TrainerPosition& p = resumed_->position;
  engine.state.epoch = p.epoch;
  engine.state.iteration = p.iteration;
  engine.state.epoch_iteration = p.epoch_iteration;
  engine.state.epoch_length = setup_->iters_per_epoch;
  run_.loss.restore(p.running_loss, p.running_loss_set, run_.dist.rank);
  run_.last_val = p.last_val;
  if (p.trackers.IsMap()) {
    validation_->load_state(p.trackers);
    if (step_->scaler().enabled()) step_->scaler().load_state(p.trackers["loss_scaler"]);
  }
}

TrainerPosition Trainer::position(const Engine& e) const {
  TrainerPosition p;
  p.epoch = e.state.epoch;
  p.iteration = e.state.iteration;
  p.epoch_iteration = e.state.epoch_iteration;
  p.running_loss = run_.loss.values().running;  // read_loss() before: see save_checkpoint
  p.running_loss_set = run_.loss.values().running_set;
  p.last_val = run_.last_val;
  validation_->save_state(p.trackers);
  if (step_->scaler().enabled()) p.trackers["loss_scaler"] = step_->scaler().state();
  return p;
}

std::string Trainer::save_checkpoint(const Engine& e) {
  run_.read_loss(e);  // the running loss as of this iteration, and no non-finite loss saved
  Components& c = setup_->c;
  return runner::save_checkpoint(
      comm_, run_.run_dir, config_.checkpoint.n_saved_checkpoints, config_yaml_,
      TrainingObjects{*c.model, *c.optimizer, *setup_->scheduler, run_.placement, ema_.get(), &c.dataflow.files},
      position(e));
}

// What report.html and summary.yaml say about time and throughput (rank 0's clock;
// samples/s counts every rank's samples as this rank's times the world size).
tracking::Facts Trainer::facts(const Engine& e) const {
  const double train_s = run_.train_seconds;
  const double ips = train_s > 0 ? static_cast<double>(run_.samples) * run_.dist.world_size / train_s : 0;
  char buf[128];
  tracking::Facts f;
  f.emplace_back("epochs", std::to_string(e.state.epoch) + " of " + std::to_string(e.state.max_epochs));
  f.emplace_back("iterations", std::to_string(e.state.iteration) + " of " + std::to_string(setup_->total_iters) + " (" +
                                   std::to_string(setup_->iters_per_epoch) + " per epoch, global batch " +
                                   std::to_string(setup_->c.dataflow.batch_size) + ")");
  std::snprintf(buf, sizeof buf, "%.1f", ips);
  f.emplace_back("samples/s (training)", buf);
  std::snprintf(buf, sizeof buf, "%.1f%% of training time",
                train_s > 0 ? 100 * e.state.data_wait_seconds / train_s : 0.0);
  f.emplace_back("data wait", buf);
  f.emplace_back("training time",
                 format_duration(train_s) + " (" + format_number(std::round(train_s * 10) / 10) + " s)");
  f.emplace_back("wall time (this process)", format_duration(run_.seconds_since_start()));
  f.emplace_back("processes", std::to_string(run_.dist.world_size) + " (" + run_.dist.backend + "), " +
                                  std::to_string(threads_) + " thread(s) each");
  f.emplace_back("device", run_.placement.describe());
  std::snprintf(buf, sizeof buf, "%.1f MiB (%s)",
                static_cast<double>(device::peak_memory_bytes(run_.placement)) / (1024.0 * 1024),
                run_.placement.is_cuda() ? "largest allocation total on the GPU" : "peak resident set of rank 0");
  f.emplace_back("peak memory", buf);
  f.emplace_back("host reads", std::to_string(device::host_reads()) + " (device-to-host reads in training)");
  f.emplace_back("step time by part", run_.times.shares());
  f.emplace_back("model", config_.component(Kind::Model).name + ", " +
                              std::to_string(count_parameters(*setup_->c.model)) + " parameters");
  const StepOptions& st = config_.step;
  f.emplace_back(
      "step", "amp " + st.amp + (st.channels_last ? ", channels_last" : "") +
                  (st.grad_accumulation_steps > 1 ? ", " + std::to_string(st.grad_accumulation_steps) + " micro-batches"
                                                  : std::string()) +
                  (st.cuda_graph ? ", CUDA graph" : ""));
  return f;
}

void Trainer::print_banner() const {
  const Dataflow& df = setup_->c.dataflow;
  const DistInfo& dist = run_.dist;
  const StepOptions& st = config_.step;
  RLOG_INFO("runner {} | LibTorch {} | {} | C++{} | malloc: {}", version(), TORCH_VERSION, compiler_version(),
            __cplusplus / 100 % 100, keep_freed_memory());
  RLOG_INFO("device: {} | threads: {} per rank | world size: {} (backend {}) | CUDA: {}", run_.placement.describe(),
            threads_, dist.world_size, dist.backend, device::describe(device::cuda_status()));
  RLOG_INFO("config: {}\n{}", config_.path, config_yaml_);
  RLOG_INFO("data: {} | train {} samples, val {} samples, {} classes", df.description, df.train->size(), df.val->size(),
            df.num_classes);
  RLOG_INFO("batch: {} global{} -> {} iterations per epoch, {} in total", df.batch_size,
            dist.world_size > 1 ? " (" + std::to_string(df.batch_size / dist.world_size) + " per rank)" : "",
            setup_->iters_per_epoch, setup_->total_iters);
  const config::Node* pretrained = config_.component(Kind::Model).node->find("pretrained");
  RLOG_INFO("model: {}, {} parameters{}", config_.component(Kind::Model).name, count_parameters(*setup_->c.model),
            pretrained && !pretrained->is_null() ? ", weights from " + pretrained->scalar : "");
  if (!setup_->c.no_decay.empty()) RLOG_INFO("optimizer.no_decay: {}", setup_->c.no_decay);
  // runner::nn::BatchNorm2d's fused CPU kernel (its models' BatchNorms, in training).
  const bool fused = st.channels_last && st.fused_kernels && !run_.placement.is_cuda() && !nn::detail::batchnorm_sync();
  RLOG_INFO(
      "step: amp {} | memory layout {} | gradient clipping {} | {} micro-batch(es) per step{}", st.amp,
      st.channels_last ? (fused ? "channels_last, fused BatchNorm+ReLU" : "channels_last") : "contiguous (NCHW)",
      st.grad_clip_norm ? "at L2 norm " + format_number(*st.grad_clip_norm) : std::string("off"),
      st.grad_accumulation_steps,
      st.cuda_graph ? " | CUDA graph after " + std::to_string(TrainStep::kGraphWarmupSteps) + " eager steps" : "");
  const int nodes = static_cast<int>(comm_.allreduce_sum({dist.local_rank == 0 ? 1.0 : 0.0})[0]);
  if (reducer_)
    RLOG_INFO(
        "dist: {} ranks on {} node(s) | backend {} | parameters and buffers broadcast from rank 0 | "
        "{} gradient bucket(s) of <= {} MB | BatchNorm: {} | timeout {} s",
        dist.world_size, nodes, comm_.backend(), reducer_->num_buckets(), config_.dist.bucket_mb,
        sync_bn_ ? "statistics over the global batch (sync_batchnorm)"
                 : "statistics per rank, rank 0's running buffers before each evaluation",
        config_.dist.timeout);
  if (dist.is_main()) RLOG_INFO("run folder: {}", run_.run_dir);
  if (resumed_)
    RLOG_INFO("resumed from {}: epoch {}, iteration {} ({} of {} in the epoch)", resumed_->path,
              resumed_->position.epoch, resumed_->position.iteration, resumed_->position.epoch_iteration,
              setup_->iters_per_epoch);
}

// With `profile:`: the FLOP rate over the training loop and its share of the device's peak
// (the higher of its measured matmul and convolution rates), measured here on the rank's
// device and threads in the step's precision (after training: not part of the run's times).
void Trainer::print_achieved(double samples_per_second) {
  const std::string& amp = config_.step.amp;
  const torch::ScalarType dtype = amp == "bf16" ? torch::kBFloat16 : amp == "fp16" ? torch::kHalf : torch::kFloat;
  const Profiler::Figures& p = *profiler_->figures();
  const double achieved = achieved_gflops(p, samples_per_second);
  const std::string line = fmt::format(
      "achieved: {:.1f} GFLOP/s per rank over the training loop ({:.3f} GFLOP per iteration, as profiled; the "
      "traced iterations ran at {:.1f} with the profiler's overhead)",
      achieved, p.gflop_per_iteration(), p.gflops());
  try {  // three n x n matrices (805 MB at 8192 in float32): a full GPU must not fail a finished run
    peak_ = device::peak_gflops(run_.placement, dtype);
  } catch (const std::exception& e) {
    peak_ = {};
    RLOG_WARN("profile: this device's peak rate could not be measured, so no MFU: {}", first_line(e.what()));
    RLOG_INFO("{}", line);
    return;
  }
  // 3 significant digits: a small model on a GPU runs at a few ten-thousandths of its peak
  RLOG_INFO(
      "{}; MFU {:.3g} of this {}'s {:.1f} GFLOP/s in {} (measured: matrix multiply {:.1f}, 3x3 convolution {:.1f})",
      line, achieved / peak_.best(), run_.placement.is_cuda() ? "GPU" : "CPU", peak_.best(), c10::toString(dtype),
      peak_.matmul, peak_.conv);
}

// The end of a finished run: throughput of the whole job (every rank's samples over the
// slowest rank's time), the weights every rank agrees on, summary.yaml and the last lines.
void Trainer::print_summary(const Engine& e, TrainResult& result) {
  const DistInfo& dist = run_.dist;
  const double train_s = run_.train_seconds;
  result.run_dir = run_.run_dir;
  result.train_seconds = train_s;
  const double all_samples = comm_.allreduce_sum({static_cast<double>(run_.samples)})[0];
  const double slowest = comm_.allreduce_max(train_s);
  result.samples_per_second = slowest > 0 ? all_samples / slowest : 0;
  for (const auto& [k, v] : run_.last_val) result.final_metrics[k] = v;
  const double wall = run_.seconds_since_start();
  const double wait_share = train_s > 0 ? e.state.data_wait_seconds / train_s : 0;
  RLOG_INFO(
      "training: {} epochs, {} iterations in {:.1f} s ({:.1f} samples/s{}, data wait {:.1f}%); total {:.1f} s "
      "(validation {:.1f} s, the rest {:.1f} s)",
      config_.run.num_epochs, e.state.iteration, train_s, result.samples_per_second,
      dist.world_size > 1 ? " over " + std::to_string(dist.world_size) + " ranks" : "", 100 * wait_share, wall,
      run_.validation_seconds, std::max(0.0, wall - train_s - run_.validation_seconds));
  RLOG_INFO("step time: {} (parts {:.1f} s of {:.1f} s training)", run_.times.shares(), run_.times.total(), train_s);
  if (config_.step.cuda_graph)
    RLOG_INFO("cuda_graph: {} steps replayed the graph, {} ran eagerly ({})", step_->graph_replays(),
              step_->eager_steps(),
              step_->captured_at() ? "captured at iteration " + std::to_string(step_->captured_at())
                                   : "never captured: no full batch after the warm-up");
  if (profiler_ && profiler_->figures()) print_achieved(result.samples_per_second);
  RLOG_INFO("device: {} | peak memory {:.1f} MiB | {} device-to-host reads in training", run_.placement.describe(),
            static_cast<double>(device::peak_memory_bytes(run_.placement)) / 1048576.0, device::host_reads());
  if (const double bad = comm_.allreduce_max(static_cast<double>(Loader::bad_samples())); bad > 0)
    RLOG_WARN("data: {} unreadable file(s) skipped{} (paths in the warnings above and in run.log)",
              static_cast<int64_t>(bad), dist.world_size > 1 ? " (the most any rank met)" : "");
  if (reducer_) {
    const double wait = comm_.allreduce_sum({reducer_->wait_seconds()})[0] / dist.world_size;
    RLOG_INFO(
        "gradient all-reduce: {:.1f} s waited per rank ({:.1f}% of training), {} of {} bucket launches "
        "overlapped with backward",
        wait, train_s > 0 ? 100 * wait / train_s : 0, reducer_->launched_in_backward(), reducer_->launched());
    const std::string hash = check_same_weights(comm_, *setup_->c.model);
    RLOG_INFO("weights identical on all {} ranks (hash {})", dist.world_size, hash);
  } else {
    RLOG_INFO("final weights hash {}", module_hash(*setup_->c.model));
  }
  if (run_.dist.is_main()) {
    save_safetensors(*setup_->c.model, run_.run_dir + "/model.safetensors");
    RLOG_INFO("weights: {}/model.safetensors (state-dict names; loads with safetensors.torch.load_file)", run_.run_dir);
  }
  if (ema_) export_ema();
  if (!recorder_) return;
  const tracking::Values summary = summary_values(e, result.samples_per_second, wait_share, wall);
  record_finish("finished", e, summary);
  print_final_lines(result, wall);
}

// The recorder's last report and summary.yaml (rank 0), with the loop's time by part.
void Trainer::record_finish(const std::string& status, const Engine& e, const tracking::Values& summary) {
  if (!recorder_) return;
  recorder_->step_parts(run_.times.parts());
  recorder_->finish(status, facts(e), summary);
}

// summary.yaml's figures (rank 0).
tracking::Values Trainer::summary_values(const Engine& e, double samples_per_second, double wait_share,
                                         double wall) const {
  const double train_s = run_.train_seconds;
  tracking::Values summary{
      {"epochs", static_cast<double>(e.state.epoch)},
      {"iterations", static_cast<double>(e.state.iteration)},
      {"train_seconds", std::round(train_s * 1000) / 1000},
      {"validation_seconds", std::round(run_.validation_seconds * 1000) / 1000},
      {"images_per_second", std::round(samples_per_second * 10) / 10},
      {"data_wait_share", std::round(wait_share * 10000) / 10000},
      {"peak_memory_mb", std::round(device::peak_memory_bytes(run_.placement) / 1048576.0 * 10) / 10},
      {"host_reads", static_cast<double>(device::host_reads())},
      {"step_time_s", std::round(run_.times.total() * 1000) / 1000}};
  if (config_.step.cuda_graph) summary.emplace_back("graph_replays", static_cast<double>(step_->graph_replays()));
  for (const auto& [part, seconds] : run_.times.parts())
    summary.emplace_back("step_time_" + part + "_s", std::round(seconds * 1000) / 1000);
  if (profiler_ && profiler_->figures()) {
    const Profiler::Figures& p = *profiler_->figures();
    summary.emplace_back("profile_iterations", static_cast<double>(p.iterations));
    summary.emplace_back("profile_gflop_per_iteration", std::round(p.gflop_per_iteration() * 1e4) / 1e4);
    summary.emplace_back("profile_gflops_traced", std::round(p.gflops() * 10) / 10);
    const double achieved = achieved_gflops(p, samples_per_second);
    summary.emplace_back("achieved_gflops", std::round(achieved * 10) / 10);
    if (peak_.best() > 0) {
      summary.emplace_back("matmul_peak_gflops", std::round(peak_.matmul * 10) / 10);
      summary.emplace_back("conv_peak_gflops", std::round(peak_.conv * 10) / 10);
      summary.emplace_back("mfu", std::stod(fmt::format("{:.3g}", achieved / peak_.best())));  // 3 digits
    }
  }
  summary.emplace_back("wall_seconds", std::round(wall * 1000) / 1000);
  return summary;
}

// The weight average as a model file, in the best models' format (rank 0 writes).
void Trainer::export_ema() {
  Model& model = *setup_->c.model;
  Ema::Swap swap(*ema_);
  broadcast_module(comm_, model, /*parameters=*/false, /*buffers=*/true);  // rank 0's buffers, as evaluated
  if (!run_.dist.is_main()) return;
  const std::string path = run_.run_dir + "/ema_model.pt";
  save_model_file(model, path);
  RLOG_INFO("ema: weight average (decay {}) written to {} (hash {})", format_number(ema_->decay()), path,
            module_hash(model));
}

void Trainer::print_final_lines(const TrainResult& result, double wall) const {
  std::string best_line;
  for (const auto& [k, b] : recorder_->best())
    best_line += fmt::format("{}{} {:.4f} (epoch {})", best_line.empty() ? "" : ", ", k, b.first, b.second);
  RLOG_INFO("final: {}", format_metrics(run_.last_val));
  if (!best_line.empty()) RLOG_INFO("best: {}", best_line);
  RLOG_INFO("time: {} total, {} training, {:.1f} samples/s", format_duration(wall),
            format_duration(result.train_seconds), result.samples_per_second);
  RLOG_INFO("run folder: {} (report.html, metrics.csv{}{})", result.run_dir,
            config_.tracking.tensorboard ? ", tb/" : "",
            recorder_->mlflow_run().empty() ? "" : "; MLflow run " + recorder_->mlflow_run());
  auto acc = result.final_metrics.find("val/accuracy");
  if (acc != result.final_metrics.end()) RLOG_INFO("test accuracy: {:.4f}", acc->second);
}

}  // namespace

TrainResult train(const RunConfig& config, const Registry& registry, Communicator& comm,
                  const device::Placement& placement) {
  Trainer trainer(config, registry, comm, placement);
  return trainer.run();
}

}  // namespace runner
