#pragma once
// How a backend file adds itself to the table make_communicator() reads: one static
// BackendRegistrar per backend .cpp, so a backend exists exactly when its file is built.
#include <functional>
#include <memory>

#include "dist/communicator.hpp"

namespace runner {

using BackendFactory = std::function<std::unique_ptr<Communicator>(const DistInfo&, const CommOptions&)>;

struct BackendRegistrar {
  BackendRegistrar(const char* name, BackendFactory factory);
};

}  // namespace runner
