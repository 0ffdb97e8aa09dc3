#include "logging/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <ctime>
#include <filesystem>
#include <fstream>

namespace runner::log {
namespace {
std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> l;
  return l;
}
std::shared_ptr<spdlog::logger>& file_logger() {
  static std::shared_ptr<spdlog::logger> l;
  return l;
}
int& this_rank() {
  static int r = 0;
  return r;
}
std::string& run_log_path() {
  static std::string p;
  return p;
}
spdlog::logger& get() {
  if (!logger()) init(0, Verbosity::Normal);
  return *logger();
}
spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::Debug: return spdlog::level::debug;
    case Level::Info: return spdlog::level::info;
    case Level::Warn: return spdlog::level::warn;
    case Level::Error: break;
  }
  return spdlog::level::err;
}
}  // namespace

bool enabled(Level level) {
  const auto l = to_spdlog(level);
  for (const auto& sink : get().sinks())
    if (sink->should_log(l)) return true;
  return false;
}

void write(Level level, const std::string& line) { get().log(to_spdlog(level), line); }

void flush() {
  if (logger()) logger()->flush();  // nothing to flush (and no logger to make) before init
}

void set_run_log(const std::string& path) { run_log_path() = path; }

void error(const std::string& message) {
  if (this_rank() == 0) {
    get().error("error: {}", message);
    get().flush();
    return;
  }
  get().error(message);
  get().flush();
  std::error_code ec;
  if (run_log_path().empty() || !std::filesystem::exists(run_log_path(), ec)) return;
  // Another process owns run.log; one short O_APPEND write keeps the line whole.
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  std::ofstream out(run_log_path(), std::ios::app);
  out << "[" << stamp << "] [error] [rank " << this_rank() << "] " << message << "\n";
}

bool& verbose_flag() {
  static bool v = false;
  return v;
}

bool verbose() { return verbose_flag(); }

void init(int rank, Verbosity verbosity) {
  this_rank() = rank;
  verbose_flag() = verbosity == Verbosity::Verbose;
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto l = std::make_shared<spdlog::logger>("runner", sink);
  l->set_pattern(rank == 0 ? "%v" : "[rank " + std::to_string(rank) + "] %l: %v");
  // Levels live on the sinks so run.log keeps info lines even with --quiet.
  if (verbosity == Verbosity::Quiet)
    sink->set_level(spdlog::level::warn);
  else if (verbosity == Verbosity::Verbose)
    sink->set_level(spdlog::level::debug);
  else
    sink->set_level(rank == 0 ? spdlog::level::info : spdlog::level::warn);
  l->set_level(spdlog::level::debug);
  l->flush_on(spdlog::level::info);
  logger() = l;
}

void add_file(const std::string& path) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  sink->set_level(spdlog::level::info);
  get().sinks().push_back(sink);
  file_logger() = std::make_shared<spdlog::logger>("runner-file", sink);
  file_logger()->flush_on(spdlog::level::info);
}

void to_file(const std::string& line) {
  if (file_logger()) file_logger()->info(line);
}

}  // namespace runner::log
