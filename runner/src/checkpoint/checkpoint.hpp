#pragma once
// Checkpoint files: one self-checking file per checkpoint in <run>/checkpoints/,
// written atomically (util::write_file_atomic) and pointed at by `latest` (updated
// only after the file is complete).
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

/// Writes `bytes` to dir/name atomically, then points dir/latest at it. Returns the path.
/// (Read a checkpoint file with util::read_file, then decode().)
std::string write_atomic(const std::string& dir, const std::string& name, const std::string& bytes);

/// Checkpoint files of a run folder, oldest first (by iteration in the name).
std::vector<std::string> list(const std::string& run_dir);
/// Removes all but the newest `keep` checkpoint files of `run_dir`.
void prune(const std::string& run_dir, int keep);

}  // namespace runner::checkpoint
