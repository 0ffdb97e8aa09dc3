#pragma once
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "registry/registry.hpp"
#include "runner/error.hpp"

namespace test {

/// A fresh temporary folder, removed when the object goes.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/runner-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    const auto p = path / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
};

inline const runner::Registry& builtin_registry() {
  static runner::Registry r = [] {
    runner::Registry reg;
    reg.load(runner::Registry::builtin_dir(), "test");
    return reg;
  }();
  return r;
}

/// The message of the ConfigError `f` throws (fails the test if it throws none).
template <class F>
std::string config_error(F&& f) {
  try {
    f();
  } catch (const runner::ConfigError& e) {
    return e.what();
  }
  FAIL("expected a ConfigError");
  return "";
}

}  // namespace test
