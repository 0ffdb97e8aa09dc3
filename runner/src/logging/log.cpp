#include "logging/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

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
}  // namespace

void init(int rank, Verbosity verbosity) {
  auto sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  auto l = std::make_shared<spdlog::logger>("runner", sink);
  l->set_pattern(rank == 0 ? "%v" : "[rank " + std::to_string(rank) + "] %l: %v");
  // Levels live on the sinks so run.log keeps info lines even with --quiet.
  if (verbosity == Verbosity::Quiet) sink->set_level(spdlog::level::warn);
  else if (verbosity == Verbosity::Verbose) sink->set_level(spdlog::level::debug);
  else sink->set_level(rank == 0 ? spdlog::level::info : spdlog::level::warn);
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

spdlog::logger& get() {
  if (!logger()) init(0, Verbosity::Normal);
  return *logger();
}

}  // namespace runner::log
