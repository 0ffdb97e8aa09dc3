#pragma once
// Logging: the console (rank 0 shows info; other ranks warnings and errors only, prefixed
// with their rank) and, once a run folder exists, run.log.
//
// spdlog lives behind log.cpp alone, in a library that never sees LibTorch's headers: the
// torch wheel ships its own fmt (12.x, header-only) under torch/include/fmt, while Debian's
// spdlog is built against Debian's fmt 9, and no translation unit may see both. Call sites
// format with whichever fmt their include path gives them (LibTorch's, header-only, in every
// torch translation unit) and hand this file finished lines.
#include <fmt/format.h>

#include <string>

namespace runner::log {

enum class Verbosity { Quiet, Normal, Verbose };
enum class Level { Debug, Info, Warn, Error };

/// Sets up the process-wide logger. Call once, early.
void init(int rank, Verbosity verbosity);
/// Adds `<run folder>/run.log` (rank 0 only), appended to.
void add_file(const std::string& path);
/// True when a line of this level reaches some sink (so the caller formats it at all).
bool enabled(Level level);
/// Writes one finished line at this level.
void write(Level level, const std::string& line);
/// Flushes every sink (before a deliberate crash or the exit, so the last lines are on disk);
/// before init() there is none, and nothing is made.
void flush();
/// True with --verbose (debug lines shown).
bool verbose();

}  // namespace runner::log

#define RLOG_AT_(level, ...)                                                                    \
  do {                                                                                          \
    if (::runner::log::enabled(level)) ::runner::log::write(level, ::fmt::format(__VA_ARGS__)); \
  } while (0)
#define RLOG_INFO(...) RLOG_AT_(::runner::log::Level::Info, __VA_ARGS__)
#define RLOG_WARN(...) RLOG_AT_(::runner::log::Level::Warn, __VA_ARGS__)
#define RLOG_ERROR(...) RLOG_AT_(::runner::log::Level::Error, __VA_ARGS__)
#define RLOG_DEBUG(...) RLOG_AT_(::runner::log::Level::Debug, __VA_ARGS__)

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
