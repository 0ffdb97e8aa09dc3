#include "engine/training.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <signal.h>

#include <atomic>

#include <thread>

#include "device/cuda.hpp"
#include "dist/reducer.hpp"
#include "engine/checkpointing.hpp"
#include "engine/trackers.hpp"
#include "dist/sync.hpp"
#include "engine/build.hpp"
#include "engine/engine.hpp"
#include "engine/loss_scaler.hpp"
#include "engine/precision.hpp"
#include "logging/log.hpp"
#include "logging/reports.hpp"
#include "metrics/metrics.hpp"
#include "runner/error.hpp"
#include "tracking/metrics_log.hpp"
#include "tracking/recorder.hpp"
#include "util/strings.hpp"
#include "util/system.hpp"

namespace fs = std::filesystem;

namespace runner {
namespace {

using clock_type = std::chrono::steady_clock;

std::string create_run_folder(const RunConfig& config, const DistInfo& dist) {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&now));
  const std::string base = (fs::path(config.output_path) / config.name /
                            (std::string(stamp) + "_" + config.component(Kind::Model).name + "_" + dist.backend +
                             "-" + std::to_string(dist.world_size)))
                               .string();
  std::string dir = base;
  std::error_code ec;
  fs::create_directories(fs::path(base).parent_path(), ec);
  if (ec) throw Error(fs::path(base).parent_path().string() + ": cannot create the run folder's parent: " + ec.message());
  for (int i = 2; !fs::create_directory(dir, ec); ++i) {  // two runs in the same second
    if (ec) throw Error(dir + ": cannot create run folder: " + ec.message());
    dir = base + "-" + std::to_string(i);
  }
  return dir;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw Error(path + ": cannot write");
}

// Runs the model over `loader` in eval mode and returns "<prefix>/<metric>" values.
// Every rank evaluates its shard; the metrics' sufficient statistics are then summed
// over ranks, so every rank gets the full-set values.
std::vector<std::pair<std::string, double>> evaluate(Model& model, Criterion& criterion, Loader& loader,
                                                     const std::vector<std::shared_ptr<Metric>>& metrics,
                                                     const std::string& prefix, Communicator& comm,
                                                     const RunConfig& config) {
  // Buffers (BatchNorm running statistics) are per rank while training; evaluation
  // and the final weights use rank 0's.
  broadcast_module(comm, model, /*parameters=*/false, /*buffers=*/true);
  torch::NoGradGuard no_grad;
  model.eval();
  for (auto& m : metrics) m->reset();
  Engine evaluator([&](Engine&, Batch& batch) {
    if (batch.input.size(0) == 0) return;  // a rank's share of a small last batch
    BatchOutput out;
    {
      AutocastScope autocast(config.amp);
      out.logits = model.forward(config.channels_last ? batch.input.contiguous(at::MemoryFormat::ChannelsLast)
                                                      : batch.input);
    }
    out.logits = out.logits.to(torch::kFloat32);
    out.targets = batch.target;
    out.loss = criterion(out.logits, out.targets).item<double>();
    for (auto& m : metrics) m->update(out);
  });
  evaluator.run(loader, 1);
  model.train();
  reduce_metrics(comm, metrics);
  std::vector<std::pair<std::string, double>> values;
  for (auto& m : metrics) values.emplace_back(prefix + "/" + m->name(), m->compute());
  return values;
}

std::string format_metrics(const std::vector<std::pair<std::string, double>>& values) {
  std::string s;
  char buf[96];
  for (const auto& [k, v] : values) {
    std::snprintf(buf, sizeof buf, "%s%s %.4f", s.empty() ? "" : ", ", k.c_str(), v);
    s += buf;
  }
  return s;
}

}  // namespace

namespace {

// Everything built from the config before training starts.
struct Setup {
  Components c;
  std::unique_ptr<Loader> train_loader, val_loader, train_eval_loader;
  std::shared_ptr<Scheduler> scheduler;
  std::vector<std::shared_ptr<Metric>> metrics;  ///< built-in classification metrics + `metrics:`
  std::vector<std::string> logged;  ///< every validation metric's key: val/..., train_eval/...
  int64_t iters_per_epoch = 0, total_iters = 0;
  std::string summary;
};

std::unique_ptr<Setup> build_setup(const RunConfig& config, const Registry& registry, const DistInfo& dist) {
  auto s = std::make_unique<Setup>();
  // Test hook: a different initial model per rank, to show the start-up broadcast.
  const char* per_rank = std::getenv("RUNNER_TEST_PER_RANK_INIT");
  torch::manual_seed(config.seed + (per_rank && *per_rank == '1' ? dist.rank : 0));
  DataflowContext dctx{config.seed, dist.rank, dist.world_size};
  s->c = build_components(config, registry, dctx);
  Components& c = s->c;
  const Dataflow& df = c.dataflow;
  LoaderOptions train_opts;
  train_opts.global_batch = df.batch_size;
  train_opts.shuffle = true;
  train_opts.drop_last = df.drop_last;
  train_opts.num_workers = df.num_workers;
  train_opts.prefetch = df.prefetch;
  train_opts.seed = config.seed;
  train_opts.rank = dist.rank;
  train_opts.world_size = dist.world_size;
  train_opts.skip_bad_samples = df.skip_bad_samples;
  // Synchronised BatchNorm needs every rank in every forward: no empty shard.
  if (config.sync_batchnorm) train_opts.min_last_batch = dist.world_size;
  LoaderOptions val_opts = train_opts;
  val_opts.min_last_batch = 1;
  val_opts.global_batch = df.val_batch_size > 0 ? df.val_batch_size : df.batch_size;
  val_opts.shuffle = false;
  val_opts.drop_last = false;
  s->train_loader = std::make_unique<Loader>(df.train, train_opts);
  s->val_loader = std::make_unique<Loader>(df.val, val_opts);
  if (df.train_eval) s->train_eval_loader = std::make_unique<Loader>(df.train_eval, val_opts);
  if (s->train_loader->batches_per_epoch() < 1)
    throw ConfigError(config.component(Kind::Dataflow).node->loc.str() + ": dataflow: the train set (" +
                      std::to_string(s->train_loader->dataset_size()) + " samples) gives no batch of " +
                      std::to_string(df.batch_size) + " with drop_last");
  s->iters_per_epoch = s->train_loader->batches_per_epoch();
  s->total_iters = s->iters_per_epoch * config.num_epochs;
  s->scheduler = build_scheduler(config, registry, SchedulerContext{c.base_lr, s->iters_per_epoch, s->total_iters});
  s->summary = model_summary(*c.model, config.component(Kind::Model).name, df.train->sample_shape());
  s->metrics = classification_metrics(df.num_classes);
  auto extra = build_metrics(config, registry, MetricContext{df.num_classes});
  for (size_t i = 0; i < extra.size(); ++i) {
    for (const auto& m : s->metrics)
      if (m->name() == extra[i]->name())
        throw ConfigError(config.metrics[i].node->loc.str() + ": metrics[" + std::to_string(i) + "]: metric '" +
                          config.metrics[i].name + "' logs val/" + m->name() + ", which is already logged");
    s->metrics.push_back(extra[i]);
  }
  // best: / early_stopping: must name a metric that is logged.
  std::vector<std::string>& logged = s->logged;
  for (const auto& m : s->metrics) logged.push_back("val/" + m->name());
  if (df.train_eval)
    for (const auto& m : s->metrics) logged.push_back("train_eval/" + m->name());
  for (const auto& [key, block] : {std::pair<const char*, const ScoreBlock*>{"best", &config.best},
                                   {"early_stopping", &config.early_stopping}}) {
    if (!block->enabled || std::find(logged.begin(), logged.end(), block->metric) != logged.end()) continue;
    const config::Node* m = block->node->find("metric");
    throw ConfigError((m->loc.file == "default" ? block->node->loc : m->loc).str() + ": " + key + ".metric: '" +
                      block->metric + "' is not a logged metric" + did_you_mean(block->metric, logged) +
                      " (logged: " + join(logged) + ")");
  }
  return s;
}

// SIGTERM, SIGINT, SIGUSR1 (what Slurm sends before preemption): finish the current
// iteration, checkpoint, exit kExitStopped. A second SIGINT exits at once.
std::atomic<int> g_stop_signal{0};

extern "C" void on_stop_signal(int sig) {
  if (sig == SIGINT && g_stop_signal.load() != 0) _exit(130);
  g_stop_signal.store(sig);
}

struct SignalScope {
  struct sigaction old_term {}, old_int{}, old_usr1{};
  SignalScope() {
    g_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGUSR1, &sa, &old_usr1);
  }
  ~SignalScope() {
    sigaction(SIGTERM, &old_term, nullptr);
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGUSR1, &old_usr1, nullptr);
  }
};

const char* signal_name(int sig) {
  return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : sig == SIGUSR1 ? "SIGUSR1" : "a signal";
}

}  // namespace

TrainResult train(const RunConfig& config, const Registry& registry, Communicator& comm) {
  const auto t_start = clock_type::now();
  DistInfo dist = comm.info();
  dist.backend = comm.backend();
  const int threads = configure_threads(config.threads, dist.local_size);
  if (config.deterministic) at::globalContext().setDeterministicAlgorithms(true, false);

  // ---- build (any failure here leaves nothing behind; every rank agrees on it)
  std::unique_ptr<Setup> setup;
  std::exception_ptr build_error;
  try {
    setup = build_setup(config, registry, dist);
  } catch (...) {
    build_error = std::current_exception();
  }
  if (!build_error) {
    if (const std::string why = amp_unsupported(config.amp); !why.empty())
      build_error = std::make_exception_ptr(ConfigError(config.tree.find("amp")->loc.str() + ": amp: " + why));
  }
  agree_on_failure(comm, build_error);
  Components& c = setup->c;
  if (config.channels_last) to_channels_last(*c.model);
  const Dataflow& df = c.dataflow;
  Loader& train_loader = *setup->train_loader;
  Loader& val_loader = *setup->val_loader;
  const int64_t iters_per_epoch = setup->iters_per_epoch;
  const int64_t total_iters = setup->total_iters;
  auto& scheduler = setup->scheduler;
  const std::string model_name = config.component(Kind::Model).name;
  const std::string& summary = setup->summary;

  // ---- same start on every rank: rank 0's parameters and buffers
  if (log::verbose() && dist.world_size > 1)
    RLOG_DEBUG("initial weights hash {} (before the broadcast from rank 0)", module_hash(*c.model));
  broadcast_module(comm, *c.model, true, true);
  std::unique_ptr<SyncBatchNormScope> sync_bn;
  if (config.sync_batchnorm) {
    std::exception_ptr error;
    try {
      sync_bn = enable_sync_batchnorm(comm, *c.model, config.tree.find("dist")->find("sync_batchnorm")->loc.str());
    } catch (...) {
      error = std::current_exception();
    }
    agree_on_failure(comm, error);
  }
  std::vector<torch::Tensor> trainable;  // collected once: the step clips and unscales these
  for (auto& p : c.model->parameters())
    if (p.requires_grad()) trainable.push_back(p);
  std::unique_ptr<GradReducer> reducer;
  if (dist.world_size > 1) {
    reducer = std::make_unique<GradReducer>(trainable, comm, static_cast<int64_t>(config.bucket_mb * 1e6));
  }

  // ---- resume: the same state on every rank, from the checkpoint rank 0 found
  std::unique_ptr<Resumed> resumed;
  if (!config.resume_from.empty())
    resumed = std::make_unique<Resumed>(resume(comm, config, *c.model, *c.optimizer, *scheduler));

  // ---- run folder (rank 0 writes it; a resumed run continues in its own)
  TrainResult result;
  std::unique_ptr<tracking::Recorder> recorder;  // rank 0: metrics.jsonl/csv, tb/, MLflow, report.html
  {
    std::exception_ptr folder_error;
    if (dist.is_main()) {
      try {
        if (resumed) {
          result.run_dir = resumed->run_dir;
          tracking::truncate_metrics(result.run_dir, resumed->position.iteration);
        } else {
          result.run_dir = create_run_folder(config, dist);
          write_text(result.run_dir + "/config.yaml", config::emit(config.tree));
          write_text(result.run_dir + "/model_summary.txt", summary);
        }
        log::add_file(result.run_dir + "/run.log");
        recorder = std::make_unique<tracking::Recorder>(config, result.run_dir, summary, setup->logged,
                                                        resumed ? resumed->position.iteration : -1);
      } catch (...) {
        folder_error = std::current_exception();
      }
    }
    agree_on_failure(comm, folder_error);
    result.run_dir = comm.broadcast(result.run_dir, 0);  // decided on rank 0
    log::set_run_log(result.run_dir + "/run.log");
  }
  std::vector<NamedHandler> handlers;
  {
    std::exception_ptr error;
    try {
      handlers = build_handlers(config, registry,
                                HandlerContext{dist.rank, dist.world_size, result.run_dir, iters_per_epoch, total_iters});
    } catch (...) {
      error = std::current_exception();
    }
    agree_on_failure(comm, error);
  }

  RLOG_INFO("runner {} | LibTorch {} | {} | C++{}", version(), TORCH_VERSION, compiler_version(), __cplusplus / 100 % 100);
  RLOG_INFO("device: cpu | threads: {} per rank | world size: {} (backend {}) | CUDA: {}", threads, dist.world_size,
            dist.backend, device::describe(device::cuda_status()));
  RLOG_INFO("config: {}\n{}", config.path, config::emit(config.tree));
  RLOG_INFO("data: {} | train {} samples, val {} samples, {} classes", df.description, df.train->size(),
            df.val->size(), df.num_classes);
  RLOG_INFO("batch: {} global{} -> {} iterations per epoch, {} in total", df.batch_size,
            dist.world_size > 1 ? " (" + std::to_string(df.batch_size / dist.world_size) + " per rank)" : "",
            iters_per_epoch, total_iters);
  RLOG_INFO("model: {}, {} parameters", model_name, count_parameters(*c.model));
  RLOG_INFO("step: amp {} | memory layout {} | gradient clipping {} | {} micro-batch(es) per step", config.amp,
            config.channels_last ? "channels_last" : "contiguous (NCHW)",
            config.grad_clip_norm > 0 ? "at L2 norm " + format_number(config.grad_clip_norm) : std::string("off"),
            config.grad_accumulation_steps);
  const int nodes = static_cast<int>(comm.allreduce_sum({dist.local_rank == 0 ? 1.0 : 0.0})[0]);
  if (reducer)
    RLOG_INFO("dist: {} ranks on {} node(s) | backend {} | parameters and buffers broadcast from rank 0 | "
              "{} gradient bucket(s) of <= {} MB | BatchNorm: {} | timeout {} s",
              dist.world_size, nodes, comm.backend(), reducer->num_buckets(), config.bucket_mb,
              sync_bn ? "statistics over the global batch (sync_batchnorm)"
                      : "statistics per rank, rank 0's running buffers before each evaluation",
              config.dist_timeout);
  if (dist.is_main()) RLOG_INFO("run folder: {}", result.run_dir);
  if (resumed)
    RLOG_INFO("resumed from {}: epoch {}, iteration {} ({} of {} in the epoch)", resumed->path,
              resumed->position.epoch, resumed->position.iteration, resumed->position.epoch_iteration,
              iters_per_epoch);

  // ---- trainer
  const auto& metrics = setup->metrics;
  RunningAverage running_loss;
  double lr = c.base_lr, batch_loss = 0;
  int64_t samples = 0;
  double train_seconds = 0;
  auto t_epoch = clock_type::now(), last_log_time = t_epoch;
  int64_t last_log_iteration = 0;
  // Under mpirun a rank's stdout is a pty even when mpirun's output goes to a file: lines only.
  Progress progress(dist.is_main() && dist.world_size == 1 && isatty(STDOUT_FILENO));
  std::vector<std::pair<std::string, double>> last_val;
  int stop_signal = 0;
  SignalScope signals;
  LossScaler scaler(config.amp == "fp16");  // float16 only; its state is checkpointed

  Engine trainer([&](Engine& e, Batch& batch) {
    const int64_t n = batch.input.size(0);
    const int64_t k = config.grad_accumulation_steps;
    const double share = static_cast<double>(n) / static_cast<double>(batch.global_size);
    if (!reducer) c.optimizer->zero_grad();
    // k micro-batches of this rank's batch; their gradients add up to the gradient of the
    // batch's mean loss. This rank's share of the global batch weights its gradient (see
    // GradReducer), which communicates once, during the last micro-batch's backward.
    torch::Tensor loss_sum;  // summed on the loss's device, read once per step
    for (int64_t m = 0; m < k; ++m) {
      const int64_t lo = n * m / k, hi = n * (m + 1) / k;
      if (reducer) reducer->prepare(share, /*sync=*/m == k - 1, /*zero=*/m == 0);
      if (hi == lo) continue;
      torch::Tensor x = batch.input.slice(0, lo, hi), y = batch.target.slice(0, lo, hi);
      if (config.channels_last) x = x.contiguous(at::MemoryFormat::ChannelsLast);
      torch::Tensor logits;
      {
        AutocastScope autocast(config.amp);
        logits = c.model->forward(x);
      }
      torch::Tensor loss = (*c.criterion)(logits.to(torch::kFloat32), y);
      scaler.scale_loss(k == 1 ? loss : loss * (static_cast<double>(hi - lo) / static_cast<double>(n))).backward();
      const torch::Tensor part = loss.detach().to(torch::kFloat64) * static_cast<double>(hi - lo);
      loss_sum = loss_sum.defined() ? loss_sum + part : part;
    }
    if (reducer) reducer->finish();
    const bool finite = scaler.unscale(trainable);  // true unless fp16 overflowed
    if (finite) {
      if (config.grad_clip_norm > 0) torch::nn::utils::clip_grad_norm_(trainable, config.grad_clip_norm);
      c.optimizer->step();
    }
    scaler.update(finite);
    const double local_loss = loss_sum.defined() ? loss_sum.item<double>() / static_cast<double>(n) : 0;
    batch_loss = local_loss;
    stop_signal = g_stop_signal.load();
    if (reducer) {  // the global batch's mean loss, and any rank's stop signal: every rank decides alike
      const std::vector<double> sums = comm.allreduce_sum(
          {local_loss * static_cast<double>(n), static_cast<double>(n), static_cast<double>(stop_signal)});
      batch_loss = sums[0] / sums[1];
      stop_signal = sums[2] > 0 ? (stop_signal ? stop_signal : SIGTERM) : 0;
    }
    if (!std::isfinite(batch_loss))
      agree_on_failure(comm, std::make_exception_ptr(Error(
                                 "train/batch_loss is " + std::to_string(batch_loss) + " at iteration " +
                                 std::to_string(e.state.iteration) + " (epoch " + std::to_string(e.state.epoch) +
                                 "); lower the learning rate or check the data")));
    running_loss.update(batch_loss);
    samples += n;
  });

  if (resumed) {
    const TrainerPosition& p = resumed->position;
    trainer.state.epoch = p.epoch;
    trainer.state.iteration = p.iteration;
    trainer.state.epoch_iteration = p.epoch_iteration;
    trainer.state.epoch_length = iters_per_epoch;
    running_loss.restore(p.running_loss, p.running_loss_set);
    last_val = p.last_val;
  }
  std::unique_ptr<BestModels> best;
  std::unique_ptr<EarlyStopping> early;
  if (config.best.enabled)
    best = std::make_unique<BestModels>(ScoreRule{config.best.metric, config.best.maximize}, config.best.n_saved);
  if (config.early_stopping.enabled)
    early = std::make_unique<EarlyStopping>(ScoreRule{config.early_stopping.metric, config.early_stopping.maximize},
                                            config.early_stopping.patience, config.early_stopping.min_delta);
  if (resumed && resumed->position.trackers.IsMap()) {
    if (best) best->load(resumed->position.trackers["best"]);
    if (early) early->load(resumed->position.trackers["early_stopping"]);
    if (scaler.enabled()) scaler.load_state(resumed->position.trackers["loss_scaler"]);
  }
  auto position = [&](const Engine& e) {
    TrainerPosition p;
    p.epoch = e.state.epoch;
    p.iteration = e.state.iteration;
    p.epoch_iteration = e.state.epoch_iteration;
    p.running_loss = running_loss.value();
    p.running_loss_set = running_loss.has_value();
    p.last_val = last_val;
    if (best) p.trackers["best"] = best->state();
    if (early) p.trackers["early_stopping"] = early->state();
    if (scaler.enabled()) p.trackers["loss_scaler"] = scaler.state();
    return p;
  };
  auto checkpoint = [&](const Engine& e) {
    return save_checkpoint(comm, config, result.run_dir, *c.model, *c.optimizer, *scheduler, position(e));
  };

  // Failure injection (crash_iteration), on one rank or all: before the step of that
  // iteration, or (crash_mode validation) inside the first validation after it.
  const bool crash_here = config.crash_iteration > 0 && (config.crash_rank < 0 || config.crash_rank == dist.rank);
  const bool crash_in_validation = crash_here && config.crash_mode == "validation";
  if (crash_here && !crash_in_validation) {
    trainer.on(Event::IterationStarted, [&](Engine& e) {
      if (e.state.iteration != config.crash_iteration) return;
      log::flush();
      if (config.crash_mode == "kill") raise(SIGKILL);
      if (config.crash_mode == "hang")
        for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
      throw Error("crash_iteration: failure injected at iteration " + std::to_string(e.state.iteration) +
                  " on rank " + std::to_string(dist.rank));
    });
  }

  // What report.html and the final summary say about time and throughput (rank 0's
  // clock; images/s counts every rank's samples as this rank's times the world size).
  const auto t_wall = clock_type::now();
  auto facts = [&](const Engine& e) {
    const double wall = std::chrono::duration<double>(clock_type::now() - t_wall).count();
    const double ips = train_seconds > 0 ? static_cast<double>(samples) * dist.world_size / train_seconds : 0;
    char buf[128];
    tracking::Facts f;
    f.emplace_back("epochs", std::to_string(e.state.epoch) + " of " + std::to_string(e.state.max_epochs));
    f.emplace_back("iterations", std::to_string(e.state.iteration) + " of " + std::to_string(total_iters) + " (" +
                                     std::to_string(iters_per_epoch) + " per epoch, global batch " +
                                     std::to_string(df.batch_size) + ")");
    std::snprintf(buf, sizeof buf, "%.1f", ips);
    f.emplace_back("images/s (training)", buf);
    std::snprintf(buf, sizeof buf, "%.1f%% of training time",
                  train_seconds > 0 ? 100 * e.state.data_wait_seconds / train_seconds : 0.0);
    f.emplace_back("data wait", buf);
    f.emplace_back("training time", format_duration(train_seconds) + " (" + format_number(std::round(train_seconds * 10) / 10) + " s)");
    f.emplace_back("wall time (this process)", format_duration(wall));
    f.emplace_back("processes", std::to_string(dist.world_size) + " (" + dist.backend + "), " + std::to_string(threads) +
                                    " thread(s) each");
    f.emplace_back("model", model_name + ", " + std::to_string(count_parameters(*c.model)) + " parameters");
    f.emplace_back("step", "amp " + config.amp + (config.channels_last ? ", channels_last" : "") +
                               (config.grad_accumulation_steps > 1
                                    ? ", " + std::to_string(config.grad_accumulation_steps) + " micro-batches"
                                    : std::string()));
    return f;
  };

  // A report exists from the start (empty curves), then follows each validation.
  trainer.on(Event::Started, [&](Engine& e) {
    if (recorder) recorder->refresh(facts(e));
  });

  // LR schedule: the rate of iteration i (0-based) is set before its step.
  trainer.on(Event::IterationStarted, [&](Engine& e) {
    lr = scheduler->lr(e.state.iteration - 1);
    set_lr(*c.optimizer, lr);
  });
  trainer.on(Event::EpochStarted, [&](Engine& e) {
    t_epoch = last_log_time = clock_type::now();
    last_log_iteration = e.state.iteration;
  });
  auto rate = [&](const Engine& e, double* it_per_s, double* eta) {
    const double dt = std::chrono::duration<double>(clock_type::now() - t_epoch).count();
    *it_per_s = dt > 0 ? e.state.epoch_iteration / dt : 0;
    const int64_t left = (e.state.max_epochs - e.state.epoch + 1) * e.state.epoch_length - e.state.epoch_iteration;
    *eta = *it_per_s > 0 ? left / *it_per_s : NAN;
  };
  if (progress.tty()) {
    trainer.on(Event::IterationCompleted, [&](Engine& e) {
      double ips, eta;
      rate(e, &ips, &eta);
      progress.bar(e.state.epoch, e.state.max_epochs, e.state.epoch_iteration, e.state.epoch_length, ips, eta,
                   running_loss.value(), lr);
    });
  }
  trainer.on(Event::IterationCompleted, [&](Engine& e) {
    double ips, eta;
    rate(e, &ips, &eta);
    if (recorder) {
      recorder->log(e.state.iteration, e.state.epoch, {{"train/batch_loss", batch_loss}, {"lr", lr}});
      const double dt = std::chrono::duration<double>(clock_type::now() - last_log_time).count();
      if (dt > 0 && e.state.iteration > last_log_iteration)
        recorder->throughput(e.state.iteration, static_cast<double>(e.state.iteration - last_log_iteration) *
                                                    static_cast<double>(df.batch_size) / dt);
      last_log_time = clock_type::now();
      last_log_iteration = e.state.iteration;
    }
    char line[256];
    std::snprintf(line, sizeof line, "epoch %ld/%ld iter %ld/%ld | loss %.4f (avg %.4f) | lr %.5g | %.1f it/s, ETA %s",
                  long(e.state.epoch), long(e.state.max_epochs), long(e.state.epoch_iteration),
                  long(e.state.epoch_length), batch_loss, running_loss.value(), lr, ips, format_duration(eta).c_str());
    if (progress.tty()) log::to_file(line);
    else RLOG_INFO("{}", line);
  }, config.log_every_iters);
  trainer.on(Event::EpochCompleted, [&](Engine& e) {
    train_seconds += std::chrono::duration<double>(clock_type::now() - t_epoch).count();
    if (e.state.epoch % config.validate_every != 0 && e.state.epoch != e.state.max_epochs) return;
    progress.clear();
    last_val = evaluate(*c.model, *c.criterion, val_loader, metrics, "val", comm, config);
    if (setup->train_eval_loader) {
      auto train_eval = evaluate(*c.model, *c.criterion, *setup->train_eval_loader, metrics, "train_eval", comm, config);
      last_val.insert(last_val.end(), train_eval.begin(), train_eval.end());
    }
    if (crash_in_validation && e.state.iteration >= config.crash_iteration)  // computed, nothing recorded yet
      throw Error("crash_iteration: failure injected during the validation after iteration " +
                  std::to_string(e.state.iteration) + " on rank " + std::to_string(dist.rank));
    if (recorder) recorder->log(e.state.iteration, e.state.epoch, last_val);
    RLOG_INFO("epoch {}/{} validation: {}", e.state.epoch, e.state.max_epochs, format_metrics(last_val));
    auto score = [&](const std::string& metric) {
      for (const auto& [k, v] : last_val)
        if (k == metric) return v;
      return std::nan("");
    };
    if (best) {
      const std::string file = best->update(e.state.epoch, score(config.best.metric), *c.model, result.run_dir,
                                            dist.is_main());
      if (!file.empty()) RLOG_INFO("best model: {}", file);
    }
    std::string why;
    if (early && early->update(e.state.epoch, score(config.early_stopping.metric), &why)) {
      RLOG_INFO("{}", why);
      e.terminate();
    }
    if (recorder) recorder->refresh(facts(e));
  });
  trainer.on(Event::Exception, [&](Engine&) { progress.clear(); });

  // ---- checkpoints: every checkpoint_every iterations (not on an epoch's last, whose
  // end-of-epoch checkpoint follows its validation) and at every epoch end; on a stop
  // signal, a checkpoint and a clean exit.
  if (config.checkpoint_every > 0)
    trainer.on(Event::IterationCompleted, [&](Engine& e) {
      if (e.state.iteration % config.checkpoint_every == 0 && e.state.epoch_iteration != e.state.epoch_length)
        checkpoint(e);
    });
  trainer.on(Event::EpochCompleted, [&](Engine& e) { checkpoint(e); });
  trainer.on(Event::IterationCompleted, [&](Engine& e) {
    if (!stop_signal) return;
    progress.clear();
    const std::string path = checkpoint(e);
    if (dist.is_main())
      RLOG_WARN("stopped by {} after iteration {} (epoch {}); checkpoint {}; continue with resume_from={}",
                signal_name(stop_signal), e.state.iteration, e.state.epoch, path, result.run_dir);
    throw Stopped{stop_signal};
  });

  // ---- the config's handlers, after the host's own for each event. `pending` and
  // `call` live as long as the trainer that calls them.
  std::vector<std::pair<std::string, double>> pending;  // what handlers log for this event
  auto call = [&](Engine& e, void (Handler::*event)(const TrainingState&)) {
    TrainingState st;
    st.epoch = e.state.epoch;
    st.max_epochs = e.state.max_epochs;
    st.iteration = e.state.iteration;
    st.epoch_iteration = e.state.epoch_iteration;
    st.epoch_length = e.state.epoch_length;
    st.batch_loss = batch_loss;
    st.lr = lr;
    for (const auto& [k, v] : last_val) st.metrics[k] = v;
    st.model = c.model.get();
    st.run_dir = result.run_dir;
    st.rank = dist.rank;
    st.world_size = dist.world_size;
    st.log = [&](const std::string& key, double value) { pending.emplace_back(key, value); };
    for (auto& h : handlers) {
      if (!dist.is_main() && !h.handler->every_rank()) continue;
      try {
        ((*h.handler).*event)(st);
      } catch (const std::exception& ex) {
        throw Error("handler " + h.what + ": " + first_line(ex.what()));
      }
    }
    if (!pending.empty() && recorder) recorder->log(e.state.iteration, e.state.epoch, pending);
    pending.clear();
  };
  if (!handlers.empty()) {
    trainer.on(Event::Started, [&](Engine& e) { call(e, &Handler::started); });
    trainer.on(Event::EpochStarted, [&](Engine& e) { call(e, &Handler::epoch_started); });
    trainer.on(Event::IterationCompleted, [&](Engine& e) { call(e, &Handler::iteration_completed); });
    trainer.on(Event::EpochCompleted, [&](Engine& e) { call(e, &Handler::epoch_completed); });
    trainer.on(Event::Completed, [&](Engine& e) { call(e, &Handler::completed); });
  }

  try {
    trainer.run(train_loader, config.num_epochs);
  } catch (const Stopped&) {
    if (recorder) recorder->finish("stopped", facts(trainer), {});
    throw;
  } catch (...) {
    if (recorder) recorder->finish("failed", facts(trainer), {});
    throw;
  }

  result.train_seconds = train_seconds;
  // Throughput of the whole job: every rank's samples over the slowest rank's time.
  const double all_samples = comm.allreduce_sum({static_cast<double>(samples)})[0];
  const double slowest = comm.allreduce_max(train_seconds);
  result.samples_per_second = slowest > 0 ? all_samples / slowest : 0;
  for (const auto& [k, v] : last_val) result.final_metrics[k] = v;
  const double wall = std::chrono::duration<double>(clock_type::now() - t_start).count();
  const double wait_share = train_seconds > 0 ? trainer.state.data_wait_seconds / train_seconds : 0;
  RLOG_INFO("training: {} epochs, {} iterations in {:.1f} s ({:.1f} samples/s{}, data wait {:.1f}%); total {:.1f} s",
            config.num_epochs, trainer.state.iteration, train_seconds, result.samples_per_second,
            dist.world_size > 1 ? " over " + std::to_string(dist.world_size) + " ranks" : "", 100 * wait_share, wall);
  if (const double bad = comm.allreduce_max(static_cast<double>(Loader::bad_samples())); bad > 0)
    RLOG_WARN("data: {} unreadable file(s) skipped{} (paths in the warnings above and in run.log)",
              static_cast<int64_t>(bad), dist.world_size > 1 ? " (the most any rank met)" : "");
  if (reducer) {
    const double wait = comm.allreduce_sum({reducer->wait_seconds()})[0] / dist.world_size;
    RLOG_INFO("gradient all-reduce: {:.1f} s waited per rank ({:.1f}% of training), {} of {} bucket launches "
              "overlapped with backward",
              wait, train_seconds > 0 ? 100 * wait / train_seconds : 0, reducer->launched_in_backward(),
              static_cast<int64_t>(reducer->num_buckets()) * trainer.state.iteration);
    const std::string hash = check_same_weights(comm, *c.model);
    RLOG_INFO("weights identical on all {} ranks (hash {})", dist.world_size, hash);
  } else {
    RLOG_INFO("final weights hash {}", module_hash(*c.model));
  }
  if (recorder) {
    recorder->finish("finished", facts(trainer),
                     {{"epochs", static_cast<double>(trainer.state.epoch)},
                      {"iterations", static_cast<double>(trainer.state.iteration)},
                      {"train_seconds", std::round(train_seconds * 1000) / 1000},
                      {"images_per_second", std::round(result.samples_per_second * 10) / 10},
                      {"data_wait_share", std::round(wait_share * 10000) / 10000},
                      {"wall_seconds", std::round(wall * 1000) / 1000}});
    std::string best_line;
    for (const auto& [k, b] : recorder->best())
      best_line += fmt::format("{}{} {:.4f} (epoch {})", best_line.empty() ? "" : ", ", k, b.first, b.second);
    RLOG_INFO("final: {}", format_metrics(last_val));
    if (!best_line.empty()) RLOG_INFO("best: {}", best_line);
    RLOG_INFO("time: {} total, {} training, {:.1f} images/s", format_duration(wall), format_duration(train_seconds),
              result.samples_per_second);
    RLOG_INFO("run folder: {} (report.html, metrics.csv{}{})", result.run_dir,
              config.tracking.tensorboard ? ", tb/" : "",
              recorder->mlflow_run().empty() ? "" : "; MLflow run " + recorder->mlflow_run());
    auto acc = result.final_metrics.find("val/accuracy");
    if (acc != result.final_metrics.end()) RLOG_INFO("test accuracy: {:.4f}", acc->second);
  }
  return result;
}

}  // namespace runner
