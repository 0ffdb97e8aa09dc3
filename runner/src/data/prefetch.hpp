#pragma once
// The device end of the input pipeline: while the step computes on batch i, batch i+1 is
// already being copied to the device (device::Transfer: a side stream on CUDA, from the
// loader's pinned memory), so the copy hides behind compute. On the CPU it only passes
// batches through. The order, the epochs and a resume's first batch are the loader's.
#include <memory>
#include <optional>

#include "data/loader.hpp"
#include "device/device.hpp"

namespace runner {

class DevicePrefetcher : public BatchSource {
 public:
  DevicePrefetcher(BatchSource& source, std::unique_ptr<device::Transfer> transfer)
      : source_(source), transfer_(std::move(transfer)) {}

  int64_t batches_per_epoch() const override { return source_.batches_per_epoch(); }
  void start_epoch(int64_t epoch, int64_t first_batch = 0) override {
    pending_.reset();
    source_.start_epoch(epoch, first_batch);
    primed_ = false;
  }
  bool next(Batch& out) override {
    if (!primed_) fetch(), primed_ = true;
    if (!pending_) return false;
    out = std::move(pending_->batch);
    const device::Transfer::Token token = std::move(pending_->token);
    pending_.reset();
    fetch();  // the next batch's copy starts before this one is computed on
    transfer_->ready(out.tensors(), token);
    return true;
  }

 private:
  struct InFlight {
    Batch batch;
    device::Transfer::Token token;
  };
  void fetch() {
    InFlight f;
    if (!source_.next(f.batch)) return;
    f.token = transfer_->start(f.batch.tensors());
    pending_ = std::move(f);
  }

  BatchSource& source_;
  std::unique_ptr<device::Transfer> transfer_;
  std::optional<InFlight> pending_;
  bool primed_ = false;
};

}  // namespace runner
