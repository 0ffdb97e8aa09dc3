#!/usr/bin/env bash
# `cmake --install` to a fresh prefix: the installed runner finds its plugins from any folder.
source "$(dirname "$0")/lib.sh"
cmake --install "$BUILD_DIR" --prefix "$TMP/prefix" > /dev/null
cd /
out=$("$TMP/prefix/bin/runner" plugins)
expect_contains "$out" "$TMP/prefix/lib/runner/plugins/librunner_models.so" "installed plugins found"
[ -f "$TMP/prefix/include/runner/plugin.hpp" ] || fail "SDK headers not installed"
[ -f "$TMP/prefix/lib/cmake/Runner/RunnerConfig.cmake" ] || fail "CMake package not installed"
finish
