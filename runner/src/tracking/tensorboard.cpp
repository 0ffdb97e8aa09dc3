#include "tracking/tensorboard.hpp"

#include <unistd.h>

#include <boost/crc.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "runner/error.hpp"
#include "tensorboard.pb.h"

namespace runner::tracking {

uint32_t crc32c(const void* data, size_t n) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, n);
  return crc.checksum();
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

namespace {

double now_seconds() {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void put_le(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// A summary value carrying plugin metadata (text, hparams).
tb::Summary::Value* plugin_value(tb::Event* e, const std::string& tag, const std::string& plugin,
                                 const std::string& content) {
  tb::Summary::Value* v = e->mutable_summary()->add_value();
  v->set_tag(tag);
  auto* pd = v->mutable_metadata()->mutable_plugin_data();
  pd->set_plugin_name(plugin);
  pd->set_content(content);
  return v;
}

// The hparams plugin's summaries hold an empty float tensor of shape [0] (its NULL_TENSOR).
void null_tensor(tb::Summary::Value* v) {
  tb::TensorProto* t = v->mutable_tensor();
  t->set_dtype(tb::DT_FLOAT);
  t->mutable_tensor_shape()->add_dim()->set_size(0);
}

}  // namespace

EventWriter::EventWriter(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create the TensorBoard folder: " + ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  path_ = dir + "/events.out.tfevents." + std::to_string(static_cast<int64_t>(std::time(nullptr))) + "." + host + "." +
          std::to_string(getpid()) + ".0";
  f_ = std::fopen(path_.c_str(), "ab");
  if (!f_) throw Error(path_ + ": cannot open for writing: " + std::strerror(errno));
  tb::Event e;
  e.set_wall_time(now_seconds());
  e.set_file_version("brain.Event:2");
  write_record(e.SerializeAsString());
  flush();
}

EventWriter::~EventWriter() {
  if (f_) std::fclose(f_);
}

void EventWriter::write_record(const std::string& bytes) {
  std::string rec;
  rec.reserve(bytes.size() + 16);
  put_le(&rec, bytes.size(), 8);
  put_le(&rec, masked_crc32c(rec.data(), 8), 4);
  rec += bytes;
  put_le(&rec, masked_crc32c(bytes.data(), bytes.size()), 4);
  if (std::fwrite(rec.data(), 1, rec.size(), f_) != rec.size()) throw Error(path_ + ": write failed");
}

void EventWriter::flush() {
  if (f_) std::fflush(f_);
}

void EventWriter::scalar(const std::string& tag, double value, int64_t step, double wall_time) {
  tb::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  tb::Summary::Value* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  write_record(e.SerializeAsString());
}

void EventWriter::text(const std::string& tag, const std::string& text, int64_t step, double wall_time) {
  tb::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  tb::Summary::Value* v = plugin_value(&e, tag, "text", "");  // TextPluginData{version: 0} is empty
  tb::TensorProto* t = v->mutable_tensor();
  t->set_dtype(tb::DT_STRING);
  t->mutable_tensor_shape()->add_dim()->set_size(1);
  t->add_string_val(text);
  write_record(e.SerializeAsString());
  flush();
}

void EventWriter::session_start(int64_t step, double wall_time) {
  tb::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  e.mutable_session_log()->set_status(tb::SessionLog::START);
  write_record(e.SerializeAsString());
}

void EventWriter::hparams(const std::vector<std::pair<std::string, std::string>>& hparams,
                          const std::vector<std::string>& metric_tags, double wall_time) {
  tb::HParamsPluginData experiment, start;
  tb::Experiment* x = experiment.mutable_experiment();
  x->set_time_created_secs(wall_time);
  tb::SessionStartInfo* s = start.mutable_session_start_info();
  s->set_start_time_secs(wall_time);
  for (const auto& [name, text] : hparams) {
    tb::HParamInfo* info = x->add_hparam_infos();
    info->set_name(name);
    google::protobuf::Value value;
    char* end = nullptr;
    const double number = std::strtod(text.c_str(), &end);
    if (!text.empty() && end && *end == '\0') {
      value.set_number_value(number);
      info->set_type(tb::DATA_TYPE_FLOAT64);
    } else if (text == "true" || text == "false") {
      value.set_bool_value(text == "true");
      info->set_type(tb::DATA_TYPE_BOOL);
    } else {
      value.set_string_value(text);
      info->set_type(tb::DATA_TYPE_STRING);
    }
    (*s->mutable_hparams())[name] = value;
  }
  for (const auto& tag : metric_tags) {
    tb::MetricInfo* m = x->add_metric_infos();
    m->mutable_name()->set_tag(tag);
    m->set_dataset_type(tag.rfind("val", 0) == 0 ? 2 : 1);  // validation (val/, val_ema/) or training
  }
  for (const auto& [tag, data] : {std::pair<const char*, tb::HParamsPluginData*>{"_hparams_/experiment", &experiment},
                                  {"_hparams_/session_start_info", &start}}) {
    tb::Event e;
    e.set_wall_time(wall_time);
    null_tensor(plugin_value(&e, tag, "hparams", data->SerializeAsString()));
    write_record(e.SerializeAsString());
  }
  flush();
}

void EventWriter::hparams_end(bool success, double wall_time) {
  tb::HParamsPluginData end;
  end.mutable_session_end_info()->set_status(success ? tb::STATUS_SUCCESS : tb::STATUS_FAILURE);
  end.mutable_session_end_info()->set_end_time_secs(wall_time);
  tb::Event e;
  e.set_wall_time(wall_time);
  null_tensor(plugin_value(&e, "_hparams_/session_end_info", "hparams", end.SerializeAsString()));
  write_record(e.SerializeAsString());
  flush();
}

}  // namespace runner::tracking
