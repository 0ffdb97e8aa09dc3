#pragma once
// The plugin registry: loads plugin libraries with Boost.DLL, checks each one's
// header (magic, API version, LibTorch version, C++ ABI), and indexes components by
// kind and name. Libraries stay loaded until the process exits, so no object a
// plugin made can outlive its code.
#include <string>
#include <vector>

#include "runner/plugin.hpp"

namespace runner {

class Registry {
 public:
  /// Loads a plugin library, or every `*.so` in a directory (sorted by name).
  /// `origin` says where the path came from, for messages ("--plugin-path", ...).
  /// A path already loaded is skipped. Throws ConfigError naming the library.
  void load(const std::string& path, const std::string& origin);

  /// The built-in plugin folder: <dir of the runner executable>/../lib/runner/plugins.
  static std::string builtin_dir();

  const Component* find(Kind kind, const std::string& name) const;
  std::vector<const Component*> components(Kind kind) const;  ///< sorted by name
  std::vector<std::string> names(Kind kind) const;
  /// The library path that provided `c`.
  const std::string& library_of(const Component* c) const;
  const std::vector<std::string>& libraries() const { return libraries_; }

 private:
  void load_library(const std::string& file, const std::string& origin);
  struct Entry {
    const Component* component;
    std::string library;
  };
  std::vector<Entry> entries_;
  std::vector<std::string> libraries_;
};

}  // namespace runner
