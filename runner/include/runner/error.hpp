#pragma once
// Exceptions of the runner. Library code throws; only main() decides how to exit.
#include <stdexcept>
#include <string>

#include "runner/api.hpp"

namespace runner {

/// Any failure the runner reports as one line. Exit code 1.
class RUNNER_API Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  ~Error() override;
};

/// Bad user input (config, overrides, command line, plugin set-up). Exit code 2.
class RUNNER_API ConfigError : public Error {
 public:
  using Error::Error;
  ~ConfigError() override;
};

/// Thrown by a component factory about one of its own parameters. The host turns
/// it into a ConfigError naming the file, line and full key path of `key`.
class RUNNER_API ParamError : public Error {
 public:
  ParamError(std::string key, const std::string& message);
  ~ParamError() override;
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

/// Thrown by Dataset::get for one unreadable sample (a corrupt or truncated image).
/// The message starts with the file's path. The loader counts it, logs it once and, when
/// the dataflow allows (`skip_bad_samples`), uses the next sample in its place.
class RUNNER_API SampleError : public Error {
 public:
  using Error::Error;
  ~SampleError() override;
};

}  // namespace runner
