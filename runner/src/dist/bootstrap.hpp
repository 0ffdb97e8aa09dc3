#pragma once
// How the ranks of a device backend meet before it has a channel of its own: rank 0 makes
// an id (NCCL's unique id) and every rank must receive it. Over MPI today (the host
// collectives every Communicator has); a torchrun-style TCP store implements the same call.
#include <string>

#include "dist/communicator.hpp"

namespace runner {

class Bootstrap {
 public:
  virtual ~Bootstrap() = default;
  /// `root`'s bytes, on every rank (collective).
  virtual std::string broadcast(const std::string& bytes, int root) = 0;
};

/// The bootstrap through `host`'s host-value broadcast.
class HostBootstrap : public Bootstrap {
 public:
  explicit HostBootstrap(Communicator& host) : host_(host) {}
  std::string broadcast(const std::string& bytes, int root) override { return host_.broadcast(bytes, root); }

 private:
  Communicator& host_;
};

}  // namespace runner
