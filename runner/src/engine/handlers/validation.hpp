#pragma once
// Validation every validate_every epochs (and after the last): the val/ metrics (and
// train_eval/ ones when the dataflow has that set), then the decisions taken on them:
// the best K models (`best:`) and early stopping (`early_stopping:`). Both keep their
// state in checkpoints, so a resumed run decides as the uninterrupted one would. With
// `ema:` the weight average is evaluated too, as val_ema/* (a best model by a val_ema
// metric is the average's weights).
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>

#include "engine/ema.hpp"
#include "engine/evaluation.hpp"
#include "engine/run_state.hpp"
#include "engine/trackers.hpp"
#include "logging/log.hpp"

namespace runner {

class Validation : public EngineHandler {
 public:
  struct Sets {
    Loader* val = nullptr;
    Loader* train_eval = nullptr;  ///< optional
    Ema* ema = nullptr;            ///< optional: also evaluate the weight average on val
  };
  Validation(int64_t every, const std::optional<BestOptions>& best, const std::optional<EarlyStoppingOptions>& early,
             Model& model, Criterion& criterion, Sets sets, const std::vector<std::shared_ptr<Metric>>& metrics,
             const StepOptions& step, Communicator& comm, RunState& run)
      : every_(every),
        model_(model),
        criterion_(criterion),
        sets_(sets),
        metrics_(metrics),
        step_(step),
        comm_(comm),
        run_(run) {
    if (best) best_ = std::make_unique<BestModels>(ScoreRule{best->metric, best->maximize()}, best->n_saved);
    if (early)
      early_ = std::make_unique<EarlyStopping>(ScoreRule{early->metric, early->maximize()}, early->patience,
                                               early->min_delta);
  }

  /// Called after the metrics are computed, before anything is recorded (fault injection).
  std::function<void(const Engine&)> after_evaluate;

  void attach(Engine& engine) override {
    engine.on(Event::EpochCompleted, [this](Engine& e) {
      if (e.state.epoch % every_ == 0 || e.state.epoch == e.state.max_epochs) validate(e);
    });
  }

  /// best-K and early-stopping state, for checkpoints.
  void save_state(YAML::Node& trackers) const {
    if (best_) trackers["best"] = best_->state();
    if (early_) trackers["early_stopping"] = early_->state();
  }
  void load_state(const YAML::Node& trackers) {
    if (best_) best_->load(trackers["best"]);
    if (early_) early_->load(trackers["early_stopping"]);
  }

 private:
  void validate(Engine& e) {
    run_.progress.clear();
    const auto t0 = std::chrono::steady_clock::now();
    run_.last_val = evaluate(model_, criterion_, *sets_.val, metrics_, "val", comm_, step_, run_.placement.device);
    if (sets_.train_eval) {
      auto train_eval =
          evaluate(model_, criterion_, *sets_.train_eval, metrics_, "train_eval", comm_, step_, run_.placement.device);
      run_.last_val.insert(run_.last_val.end(), train_eval.begin(), train_eval.end());
    }
    if (sets_.ema) {
      Ema::Swap swap(*sets_.ema);
      auto averaged =
          evaluate(model_, criterion_, *sets_.val, metrics_, "val_ema", comm_, step_, run_.placement.device);
      run_.last_val.insert(run_.last_val.end(), averaged.begin(), averaged.end());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    run_.validation_seconds += seconds;
    if (after_evaluate) after_evaluate(e);
    if (run_.recorder) run_.recorder->log(e.state.iteration, e.state.epoch, run_.last_val);
    RLOG_INFO("epoch {}/{} validation: {} ({})", e.state.epoch, e.state.max_epochs, format_metrics(run_.last_val),
              seconds < 1 ? fmt::format("{:.0f} ms", seconds * 1000) : fmt::format("{:.2f} s", seconds));
    decide(e);
    run_.refresh_report(e);
  }

  void decide(Engine& e) {
    if (best_) {
      std::optional<Ema::Swap> swap;  // a best model by a val_ema metric is the average
      if (sets_.ema && best_->rule().metric.rfind("val_ema/", 0) == 0) swap.emplace(*sets_.ema);
      const std::string file =
          best_->update(e.state.epoch, score(best_->rule().metric), model_, run_.run_dir, run_.dist.is_main());
      if (!file.empty()) RLOG_INFO("best model: {}", file);
    }
    std::string why;
    if (early_ && early_->update(e.state.epoch, score(early_->rule().metric), &why)) {
      RLOG_INFO("{}", why);
      e.terminate();
    }
  }

  double score(const std::string& metric) const {
    for (const auto& [k, v] : run_.last_val)
      if (k == metric) return v;
    return std::nan("");
  }

  int64_t every_;
  Model& model_;
  Criterion& criterion_;
  Sets sets_;
  const std::vector<std::shared_ptr<Metric>>& metrics_;
  const StepOptions& step_;
  Communicator& comm_;
  RunState& run_;
  std::unique_ptr<BestModels> best_;
  std::unique_ptr<EarlyStopping> early_;
};

}  // namespace runner
