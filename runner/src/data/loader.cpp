#include "data/loader.hpp"

#include <set>

#include "logging/log.hpp"
#include "runner/error.hpp"

namespace runner {
namespace {
// The unreadable samples met by any loader of this process (train, val and train_eval
// may read the same file), by their message, which names the file.
struct BadSamples {
  std::mutex mu;
  std::set<std::string> seen;
};
BadSamples& bad_samples_seen() {
  static BadSamples b;
  return b;
}

void check_fields(const Fields& fields) {
  if (fields.empty()) throw Error("loader: the dataset declares no fields");
  std::set<std::string> names;
  for (const Field& f : fields) {
    if (f.name.empty()) throw Error("loader: the dataset declares a field without a name");
    if (!names.insert(f.name).second) throw Error("loader: the dataset declares the field '" + f.name + "' twice");
    for (int64_t d : f.shape)
      if (d < 1)
        throw Error("loader: field '" + f.name +
                    "' has a dimension < 1 (variable lengths: declare the "
                    "maximum and a pad value)");
  }
}
}  // namespace

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)), opt_(options) {
  size_ = dataset_->size();
  fields_ = dataset_->fields();
  check_fields(fields_);
  for (const Field& f : fields_) {
    int64_t numel = 1;
    for (int64_t d : f.shape) numel *= d;
    field_bytes_.push_back(numel * static_cast<int64_t>(c10::elementSize(f.dtype)));
  }
  if (opt_.global_batch < 1) throw Error("loader: batch size must be >= 1");
  num_batches_ = opt_.drop_last ? size_ / opt_.global_batch : (size_ + opt_.global_batch - 1) / opt_.global_batch;
  if (!opt_.drop_last && size_ % opt_.global_batch != 0 && size_ % opt_.global_batch < opt_.min_last_batch)
    --num_batches_;
  for (int i = 0; i < opt_.num_workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() { stop_workers(); }

void Loader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_work_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  auto plan = std::make_shared<Plan>();
  plan->epoch = epoch;
  plan->order.resize(size_);
  for (int64_t i = 0; i < size_; ++i) plan->order[i] = i;
  if (opt_.shuffle) {  // Fisher-Yates, seeded by (seed, epoch) only
    Rng rng = Rng::for_sample(opt_.seed, static_cast<uint64_t>(epoch), ~uint64_t(0));
    for (int64_t i = size_ - 1; i > 0; --i) std::swap(plan->order[i], plan->order[rng.uniform_int(0, i)]);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    plan->generation = ++generation_;
    plan_ = plan;
    next_task_ = next_out_ = first_batch;
    ready_.clear();
    error_ = nullptr;
  }
  cv_work_.notify_all();
}

Batch Loader::build(const Plan& plan, int64_t b) const {
  const int64_t start = b * opt_.global_batch;
  const int64_t global_n = std::min(opt_.global_batch, size_ - start);
  // This rank's slice of the global batch: sizes differ by at most one.
  const int64_t base = global_n / opt_.world_size, extra = global_n % opt_.world_size;
  const int64_t n = base + (opt_.rank < extra ? 1 : 0);
  const int64_t offset = start + opt_.rank * base + std::min<int64_t>(opt_.rank, extra);

  Batch out;
  out.index = b;
  out.global_size = global_n;
  std::vector<char*> memory;
  for (const Field& f : fields_) {  // each field collated into one [n, ...shape] tensor
    std::vector<int64_t> shape = {n};
    shape.insert(shape.end(), f.shape.begin(), f.shape.end());
    const auto options = torch::TensorOptions().dtype(f.dtype).pinned_memory(opt_.pin_memory);
    torch::Tensor t = f.pad ? torch::full(shape, *f.pad, options) : torch::empty(shape, options);
    memory.push_back(static_cast<char*>(t.data_ptr()));
    out.data.emplace(f.name, std::move(t));
  }
  Sample sample(fields_);
  for (int64_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < fields_.size(); ++j) sample.set_data(j, memory[j] + i * field_bytes_[j]);
    get_sample(plan.epoch, plan.order[offset + i], sample);
  }
  return out;
}

void Loader::get_sample(int64_t epoch, int64_t index, const Sample& out) const {
  constexpr int64_t kMaxConsecutiveBad = 16;
  for (int64_t attempt = 0;; ++attempt) {
    const int64_t j = (index + attempt) % size_;
    Rng rng = Rng::for_sample(opt_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(j));
    try {
      dataset_->get(j, out, rng);
      return;
    } catch (const SampleError& e) {
      if (!opt_.skip_bad_samples)
        throw Error(std::string(e.what()) + " (sample " + std::to_string(j) +
                    "; dataflow.skip_bad_samples: true skips unreadable samples)");
      BadSamples& bad = bad_samples_seen();
      std::unique_lock<std::mutex> lock(bad.mu);
      if (bad.seen.insert(e.what()).second) {
        const size_t count = bad.seen.size();
        lock.unlock();
        RLOG_WARN("skipped unreadable sample ({} so far): {}", count, e.what());
      }
      if (attempt + 1 >= std::min(kMaxConsecutiveBad, size_))
        throw Error(std::string(e.what()) + " (and the " + std::to_string(attempt) +
                    " samples before it were unreadable too: giving up)");
    }
  }
}

int64_t Loader::bad_samples() {
  BadSamples& bad = bad_samples_seen();
  std::lock_guard<std::mutex> lock(bad.mu);
  return static_cast<int64_t>(bad.seen.size());
}

void Loader::worker_loop() {
  const int64_t capacity = std::max(1, opt_.num_workers * opt_.prefetch);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_work_.wait(
        lock, [&] { return stopping_ || (plan_ && next_task_ < num_batches_ && next_task_ - next_out_ < capacity); });
    if (stopping_) return;
    const std::shared_ptr<const Plan> plan = plan_;
    const int64_t b = next_task_++;
    lock.unlock();
    Batch batch;
    std::exception_ptr err;
    try {
      batch = build(*plan, b);
    } catch (...) {
      err = std::current_exception();
    }
    lock.lock();
    if (plan->generation != generation_) continue;  // the epoch was restarted meanwhile
    if (err && !error_) error_ = err;
    ready_.emplace(b, std::move(batch));
    cv_ready_.notify_all();
  }
}

bool Loader::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!plan_) throw Error("loader: next() before start_epoch()");
  if (next_out_ >= num_batches_) return false;
  if (workers_.empty()) {  // synchronous loading
    const auto plan = plan_;
    const int64_t b = next_out_++;
    lock.unlock();
    out = build(*plan, b);
    return true;
  }
  cv_ready_.wait(lock, [&] { return error_ || ready_.count(next_out_); });
  if (error_) std::rethrow_exception(error_);
  auto it = ready_.find(next_out_);
  out = std::move(it->second);
  ready_.erase(it);
  ++next_out_;
  lock.unlock();
  cv_work_.notify_all();
  return true;
}

}  // namespace runner
