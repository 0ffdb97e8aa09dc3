#pragma once
// TensorBoard event files: <run>/tb/events.out.tfevents.<time>.<host>.<pid>, TFRecord
// framing (length, masked CRC32C of the length, an Event protobuf, its masked CRC32C),
// first record file_version "brain.Event:2". Scalars, text and the hparams plugin's
// three summaries, as tensorboard.summary and torch.utils.tensorboard write them.
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace runner::tracking {

/// CRC-32C (Castagnoli) and TFRecord's masking of it.
uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);

class EventWriter {
 public:
  /// Creates `dir` and a new event file in it. Throws Error when it cannot.
  explicit EventWriter(const std::string& dir);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  const std::string& path() const { return path_; }
  void scalar(const std::string& tag, double value, int64_t step, double wall_time);
  /// A text summary (markdown; shown in TensorBoard's Text tab).
  void text(const std::string& tag, const std::string& text, int64_t step, double wall_time);
  /// SessionLog START at `step`: TensorBoard drops the events of earlier files with
  /// step >= `step` (what a resumed run redoes).
  void session_start(int64_t step, double wall_time);
  /// The hparams plugin: the experiment (hparam and metric names) and the session start.
  void hparams(const std::vector<std::pair<std::string, std::string>>& hparams,
               const std::vector<std::string>& metric_tags, double wall_time);
  /// The hparams session end: success or failure.
  void hparams_end(bool success, double wall_time);
  void flush();

 private:
  void write_record(const std::string& bytes);
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace runner::tracking
