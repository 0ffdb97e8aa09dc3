#pragma once
// Whole-file reads and writes, for every part of the runner that writes files of its own
// (checkpoints, run-folder reports, the MLflow store, compare.html).
#include <string>

namespace runner::util {

/// Replaces `path` with `bytes` atomically: a temporary file beside it (".<name>.tmp"),
/// fsync, rename, fsync of the folder. Readers see the old or the new file, never a part.
/// Throws Error.
void write_file_atomic(const std::string& path, const std::string& bytes);

/// Writes `text` to `path` (creating its folder), replacing what was there; not atomic
/// and not synced: for small files that nothing reads while they are written. Throws Error.
void write_text(const std::string& path, const std::string& text);

/// Reads a whole file; throws Error("<path>: cannot read") if unreadable.
std::string read_file(const std::string& path);

}  // namespace runner::util
