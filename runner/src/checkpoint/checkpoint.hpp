#pragma once
// Checkpoint files: one self-checking file per checkpoint in <run>/checkpoints/,
// written atomically (temporary file in the same folder, fsync, rename, fsync the
// folder) and pointed at by `latest` (updated only after the file is complete).
//
// Layout: "RUNNERCKPT1\n", u64 length + metadata (YAML text: counters, config, versions,
// scheduler and running-average state, ...), u64 length + tensors (a LibTorch archive:
// model, optimizer, RNG states), u32 CRC-32 of everything before it, "END\n". A file
// that is truncated or damaged anywhere fails the CRC or the framing on load.
#include <string>
#include <vector>

namespace runner::checkpoint {

struct Contents {
  std::string meta;     ///< YAML text
  std::string tensors;  ///< serialized torch::serialize::OutputArchive
};

/// Encodes `c` into the file format (bytes).
std::string encode(const Contents& c);
/// Decodes and verifies; throws Error("<what>: <why>") for a damaged file.
Contents decode(const std::string& bytes, const std::string& what);

/// Replaces `path` with `bytes` atomically: a temporary file beside it (".<name>.tmp"),
/// fsync, rename, fsync of the folder. Readers see the old or the new file, never a part.
void write_file_atomic(const std::string& path, const std::string& bytes);

/// Writes `bytes` to dir/name atomically, then points dir/latest at it. Returns the path.
std::string write_atomic(const std::string& dir, const std::string& name, const std::string& bytes);
/// Reads a whole file; throws Error if unreadable.
std::string read_file(const std::string& path);

/// Checkpoint files of a run folder, oldest first (by iteration in the name).
std::vector<std::string> list(const std::string& run_dir);
/// Removes all but the newest `keep` checkpoint files of `run_dir`.
void prune(const std::string& run_dir, int keep);

}  // namespace runner::checkpoint
