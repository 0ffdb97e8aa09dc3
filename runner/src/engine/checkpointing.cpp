#include "engine/checkpointing.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "checkpoint/checkpoint.hpp"
#include "config/tree.hpp"
#include "dist/sync.hpp"
#include "logging/log.hpp"
#include "runner/api.hpp"
#include "runner/error.hpp"
#include "util/files.hpp"
#include "util/strings.hpp"

namespace fs = std::filesystem;

namespace runner {
namespace {

std::string rng_state_bytes() {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  const at::Tensor s = gen.get_state();
  return std::string(static_cast<const char*>(s.data_ptr()), static_cast<size_t>(s.numel()));
}

void set_rng_state(const at::Tensor& state) {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state.cpu());
}

torch::Tensor bytes_tensor(const std::string& bytes) {
  auto t = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

std::string device_kind(const device::Placement& p) { return p.is_cuda() ? "cuda" : "cpu"; }

// True when `key` is `prefix` or lies under it ("dist" covers "dist.timeout").
bool under(const std::string& key, const std::string& prefix) {
  return key.compare(0, prefix.size(), prefix) == 0 &&
         (key.size() == prefix.size() || key[prefix.size()] == '.' || key[prefix.size()] == '[');
}

// Whether `key` may differ between a checkpoint's config and the resuming one: the
// user's resume_allow_changes, plus what does not change what is trained (where and how
// a run is logged, launched and checkpointed).
bool may_change(const std::string& key, const std::vector<std::string>& allowed) {
  static const std::vector<std::string> harmless = {"resume_from",       "resume_allow_changes",
                                                    "max_time",          "crash_iteration",
                                                    "crash_rank",        "crash_mode",
                                                    "output_path",       "threads",
                                                    "log_every_iters",   "validate_every",
                                                    "checkpoint_every",  "n_saved_checkpoints",
                                                    "plugins",           "handlers",
                                                    "dist.timeout",      "dist.bucket_mb",
                                                    "dist.backend",      "dataflow.num_workers",
                                                    "dataflow.prefetch", "profile"};
  for (const auto* list : {&allowed, &harmless})
    for (const auto& prefix : *list)
      if (under(key, prefix)) return true;
  return false;
}

// Whether the resolved config `current` holds `key` ("a.b.c") at its schema default.
bool at_default(const config::Node& current, const std::string& key) {
  const config::Node* n = &current;
  size_t from = 0;
  while (n && from <= key.size()) {
    const size_t dot = std::min(key.find('.', from), key.size());
    n = n->is_map() ? n->find(key.substr(from, dot - from)) : nullptr;
    from = dot + 1;
  }
  return n && n->loc.file == "default";
}

struct Found {
  std::string path;
  std::string bytes;
  checkpoint::Contents contents;
};

// Newest valid checkpoint of `run_dir` (the `latest` one first), or nothing.
bool newest_valid(const std::string& run_dir, Found* out) {
  std::vector<std::string> files = checkpoint::list(run_dir);
  std::reverse(files.begin(), files.end());
  std::ifstream latest(run_dir + "/checkpoints/latest");
  std::string name;
  if (latest >> name) {
    const std::string p = run_dir + "/checkpoints/" + name;
    auto it = std::find(files.begin(), files.end(), p);
    if (it != files.end()) std::rotate(files.begin(), it, it + 1);
  }
  for (const auto& f : files) {
    try {
      std::string bytes = util::read_file(f);
      auto contents = checkpoint::decode(bytes, f);
      *out = Found{f, std::move(bytes), std::move(contents)};
      return true;
    } catch (const Error& e) {
      RLOG_WARN("resume: {}; trying the previous checkpoint", e.what());
    }
  }
  return false;
}

std::vector<std::string> runs_newest_first(const fs::path& root) {
  std::vector<std::string> runs;
  std::error_code ec;
  if (fs::is_directory(root, ec))
    for (const auto& e : fs::directory_iterator(root, ec))
      if (e.is_directory()) runs.push_back(e.path().string());
  std::sort(runs.rbegin(), runs.rend());  // names start with the time stamp: newest first
  return runs;
}

Found locate(const ResumeRequest& request) {
  const std::string& from = request.from;
  Found found;
  std::error_code ec;
  if (from == "auto") {
    for (const auto& r : runs_newest_first(request.runs_root))
      if (newest_valid(r, &found)) return found;
    throw ConfigError("resume_from: auto: no valid checkpoint in any run folder under " + request.runs_root);
  }
  if (fs::is_directory(from, ec)) {
    if (newest_valid(from, &found)) return found;
    throw ConfigError("resume_from: " + from + ": no valid checkpoint in " + from + "/checkpoints");
  }
  if (!fs::exists(from, ec)) throw ConfigError("resume_from: " + from + ": no such checkpoint file or run folder");
  try {  // a file named by the user that cannot be used is bad input (exit 2)
    std::string bytes = util::read_file(from);
    auto contents = checkpoint::decode(bytes, "resume_from: " + from);
    return Found{from, std::move(bytes), std::move(contents)};
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
}

// The dataflow's run-folder files (a vocabulary), as text in the metadata.
void emit_files(YAML::Emitter& meta, const std::map<std::string, std::string>* files) {
  meta << YAML::Key << "files" << YAML::Value << YAML::BeginMap;
  if (files)
    for (const auto& [name, text] : *files) meta << YAML::Key << name << YAML::Value << YAML::Literal << text;
  meta << YAML::EndMap;
}

}  // namespace

std::vector<std::string> refused_changes(const config::Node& saved, const config::Node& current,
                                         const std::vector<std::string>& allowed) {
  std::vector<std::string> out;
  for (const auto& d : config::differing_keys(saved, current))
    if (!may_change(d.key, allowed) && !(d.a == "absent" && at_default(current, d.key)))
      out.push_back(d.key + " (" + d.a + " -> " + d.b + ")");
  return out;
}

std::string save_checkpoint(Communicator& comm, const std::string& run_dir, int n_saved, const std::string& config_yaml,
                            TrainingObjects objects, const TrainerPosition& pos) {
  const std::vector<std::string> rng = comm.allgather(rng_state_bytes());  // every rank's generator
  const std::vector<std::string> device_rng = comm.allgather(device::rng_state(objects.placement));  // CUDA: per rank
  if (comm.rank() != 0) return "";
  const auto t0 = std::chrono::steady_clock::now();
  torch::serialize::OutputArchive archive, model_ar, opt_ar;
  objects.model.save(model_ar);
  objects.optimizer.save(opt_ar);
  archive.write("model", model_ar);
  archive.write("optimizer", opt_ar);
  if (objects.ema) {
    torch::serialize::OutputArchive ema_ar;
    objects.ema->save(ema_ar);
    archive.write("ema", ema_ar);
  }
  for (size_t r = 0; r < rng.size(); ++r) {
    archive.write("rng/" + std::to_string(r), bytes_tensor(rng[r]));
    if (objects.placement.is_cuda()) archive.write("cuda_rng/" + std::to_string(r), bytes_tensor(device_rng[r]));
  }
  std::ostringstream tensors;
  archive.save_to(tensors);

  YAML::Emitter meta;
  meta << YAML::BeginMap;
  meta << YAML::Key << "format" << YAML::Value << "runner checkpoint 1";
  meta << YAML::Key << "runner" << YAML::Value << version();
  meta << YAML::Key << "libtorch" << YAML::Value << TORCH_VERSION;
  meta << YAML::Key << "world_size" << YAML::Value << comm.world_size();
  meta << YAML::Key << "device" << YAML::Value << device_kind(objects.placement);
  meta << YAML::Key << "epoch" << YAML::Value << pos.epoch;
  meta << YAML::Key << "iteration" << YAML::Value << pos.iteration;
  meta << YAML::Key << "epoch_iteration" << YAML::Value << pos.epoch_iteration;
  meta << YAML::Key << "running_loss" << YAML::Value << YAML::Flow << YAML::BeginSeq << format_number(pos.running_loss)
       << pos.running_loss_set << YAML::EndSeq;
  meta << YAML::Key << "last_val" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : pos.last_val) meta << YAML::Key << k << YAML::Value << format_number(v);
  meta << YAML::EndMap;
  meta << YAML::Key << "trackers" << YAML::Value;
  if (pos.trackers.IsDefined() && !pos.trackers.IsNull())
    meta << pos.trackers;
  else
    meta << YAML::Null;
  const YAML::Node sched = objects.scheduler.state();
  meta << YAML::Key << "scheduler" << YAML::Value;
  if (sched.IsDefined() && !sched.IsNull())
    meta << sched;
  else
    meta << YAML::Null;
  emit_files(meta, objects.files);
  meta << YAML::Key << "config" << YAML::Value << YAML::Literal << config_yaml;
  meta << YAML::EndMap;

  const std::string bytes = checkpoint::encode({meta.c_str(), tensors.str()});
  char name[64];
  std::snprintf(name, sizeof name, "checkpoint_%08lld.ckpt", static_cast<long long>(pos.iteration));
  const std::string path = checkpoint::write_atomic(run_dir + "/checkpoints", name, bytes);
  checkpoint::prune(run_dir, n_saved);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  RLOG_INFO("checkpoint: {} ({:.2f} MB, {:.0f} ms)", path, static_cast<double>(bytes.size()) / 1e6, ms);
  return path;
}

namespace {

// The dataflow made the same run-folder files (its vocabulary) as when the checkpoint was
// written; otherwise token ids would mean other characters.
void check_files(const YAML::Node& saved, const std::map<std::string, std::string>* files, const std::string& path) {
  for (const auto& [name, text] : files ? *files : std::map<std::string, std::string>()) {
    if (!saved || !saved[name]) continue;  // written before the dataflow kept files
    if (saved[name].as<std::string>() != text)
      throw ConfigError("resume_from: " + path + ": the dataflow's " + name +
                        " differs from the checkpoint's (its input files changed?); the model's token ids would "
                        "mean other things");
  }
}

// Every rank checks and restores the same bytes, so a failure is the same everywhere.
void restore(Communicator& comm, const ResumeRequest& request, TrainingObjects objects, const std::string& path,
             const checkpoint::Contents& contents, TrainerPosition& pos) {
  const YAML::Node meta = YAML::Load(contents.meta);
  // The config must describe the same training, except what may change.
  const config::Node saved = config::parse(meta["config"].as<std::string>(), path + " (its config)");
  const std::vector<std::string> differ = refused_changes(saved, *request.config, request.allow_changes);
  if (!differ.empty())
    throw ConfigError("resume_from: " + path + ": the config differs from the checkpoint's in " + join(differ) +
                      "; list keys that may change in resume_allow_changes");
  pos.epoch = meta["epoch"].as<int64_t>();
  pos.iteration = meta["iteration"].as<int64_t>();
  pos.epoch_iteration = meta["epoch_iteration"].as<int64_t>();
  pos.running_loss = meta["running_loss"][0].as<double>();
  pos.running_loss_set = meta["running_loss"][1].as<bool>();
  for (const auto& kv : meta["last_val"]) pos.last_val.emplace_back(kv.first.as<std::string>(), kv.second.as<double>());
  const int saved_world = meta["world_size"].as<int>();
  pos.trackers = meta["trackers"];

  check_files(meta["files"], objects.files, path);
  const std::string saved_device = meta["device"] ? meta["device"].as<std::string>() : "cpu";
  check_device_change(saved_device, device_kind(objects.placement), request.allow_changes, path);
  torch::serialize::InputArchive archive, model_ar, opt_ar;
  archive.load_from(contents.tensors.data(), contents.tensors.size(), objects.placement.device);
  archive.read("model", model_ar);
  objects.model.load(model_ar);
  archive.read("optimizer", opt_ar);
  objects.optimizer.load(opt_ar);
  if (objects.ema) {
    torch::serialize::InputArchive ema_ar;
    if (!archive.try_read("ema", ema_ar) || !objects.ema->load(ema_ar))
      RLOG_WARN("resume: {} holds no weight average (ema); it starts again from the resumed weights", path);
  }
  const std::string from_rank = std::to_string(saved_world == comm.world_size() ? comm.rank() : 0);
  torch::Tensor rng;
  archive.read("rng/" + from_rank, rng);
  set_rng_state(rng);
  if (saved_device == "cuda" && objects.placement.is_cuda()) {
    archive.read("cuda_rng/" + from_rank, rng);
    const torch::Tensor host = rng.cpu().contiguous();
    device::set_rng_state(objects.placement,
                          std::string(static_cast<const char*>(host.data_ptr()), static_cast<size_t>(host.numel())));
  }
  objects.scheduler.load_state(meta["scheduler"]);
  if (saved_world != comm.world_size())
    RLOG_WARN(
        "resume: the checkpoint was written by {} rank(s), this run has {}: data is re-sharded, every "
        "rank starts from rank 0's random state",
        saved_world, comm.world_size());
}

}  // namespace

void check_device_change(const std::string& saved, const std::string& here, const std::vector<std::string>& allow,
                         const std::string& path) {
  if (saved == here) return;
  if (!may_change("device", allow))
    throw ConfigError("resume_from: " + path + ": the checkpoint was written on " + saved + " and this run is on " +
                      here +
                      "; the random state of one does not continue on the other, so the resumed run would "
                      "not match an uninterrupted one. Resume on " +
                      saved + " (device: " + saved + "), or add device to resume_allow_changes to continue anyway");
  RLOG_WARN(
      "resume: the checkpoint was written on {}, this run is on {} (device is in resume_allow_changes): the "
      "weights and optimizer state move over; random numbers on the device start afresh",
      saved, here);
}

std::string find_launch_run(const std::string& runs_root, const std::string& launch_id) {
  for (const auto& r : runs_newest_first(runs_root)) {
    try {
      const YAML::Node launch = YAML::LoadFile(r + "/launch.yaml");
      if (launch["id"] && launch["id"].as<std::string>() == launch_id && !checkpoint::list(r).empty()) return r;
    } catch (const std::exception&) {  // no launch.yaml, or not one of ours: another run's folder
    }
  }
  return {};
}

std::string launch_yaml(const std::string& launcher, const std::string& launch_id, int world_size) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "launcher" << YAML::Value << launcher << YAML::Key << "id" << YAML::Value
      << launch_id << YAML::Key << "world_size" << YAML::Value << world_size << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

Resumed resume(Communicator& comm, const ResumeRequest& request, TrainingObjects objects) {
  Found found;  // rank 0 finds and checks the file; every rank gets its bytes
  collectively(comm, [&] {
    if (comm.rank() == 0) found = locate(request);
  });
  const std::string path = comm.broadcast(found.path, 0);
  const std::string bytes = comm.broadcast(found.bytes, 0);
  const checkpoint::Contents contents = checkpoint::decode(bytes, path);

  Resumed out;
  out.path = path;
  out.run_dir = fs::path(path).parent_path().parent_path().string();
  collectively(comm, [&] {
    try {
      restore(comm, request, objects, path, contents, out.position);
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      throw ConfigError("resume_from: " + path + ": cannot restore this run from it: " + first_line(e.what()));
    }
  });
  return out;
}

}  // namespace runner
