#pragma once
// Logging through spdlog: the console (rank 0 shows info; other ranks warnings and
// errors only, prefixed with their rank) and, once a run folder exists, run.log.
#include <spdlog/spdlog.h>

#include <string>

namespace runner::log {

enum class Verbosity { Quiet, Normal, Verbose };

/// Sets up the process-wide logger. Call once, early.
void init(int rank, Verbosity verbosity);
/// Adds `<run folder>/run.log` (rank 0 only), appended to.
void add_file(const std::string& path);
spdlog::logger& get();
/// True with --verbose (debug lines shown).
bool verbose();

}  // namespace runner::log

#define RLOG_INFO(...) ::runner::log::get().info(__VA_ARGS__)
#define RLOG_WARN(...) ::runner::log::get().warn(__VA_ARGS__)
#define RLOG_ERROR(...) ::runner::log::get().error(__VA_ARGS__)
#define RLOG_DEBUG(...) ::runner::log::get().debug(__VA_ARGS__)

namespace runner::log {
/// Writes a line to run.log only (used while a TTY progress bar owns the console).
void to_file(const std::string& line);
/// Every rank learns the run folder's run.log, so a failing rank can leave its
/// message there (when the folder is visible from its node).
void set_run_log(const std::string& path);
/// Reports a fatal error: "error: MSG" on rank 0's console and run.log, "[rank R] error:
/// MSG" on another rank's console, appended to run.log when that rank can see it.
void error(const std::string& message);
}  // namespace runner::log
