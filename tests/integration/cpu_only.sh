#!/usr/bin/env bash
# The RUNNER_CUDA=OFF configuration against the same LibTorch: it builds (runner, plugins,
# unit tests), its unit tests pass, its runner says CUDA is not compiled in and links no
# libtorch_cuda. Kept in $BUILD_DIR/cpu_only, so a second run rebuilds only what changed
# (and ccache serves a fresh clone on the same machine).
source "$(dirname "$0")/lib.sh"
cache() { sed -n "s/^$1:[A-Z]*=//p" "$BUILD_DIR/CMakeCache.txt"; }
B="$BUILD_DIR/cpu_only"
args=(-DRUNNER_CUDA=OFF -DCMAKE_BUILD_TYPE="$(cache CMAKE_BUILD_TYPE)" -DRUNNER_VENV="$(cache RUNNER_VENV)"
      -DCMAKE_PREFIX_PATH="$(cache CMAKE_PREFIX_PATH)" -DPython3_EXECUTABLE="$(cache Python3_EXECUTABLE)")
root=$(cache CUDAToolkit_ROOT); [ -z "$root" ] || args+=(-DCUDAToolkit_ROOT="$root")
run_capture "$TMP/configure.txt" cmake -S "$SOURCE_DIR" -B "$B" -G Ninja "${args[@]}"
expect_success "$TMP/configure.txt" "configuring RUNNER_CUDA=OFF"
expect_contains "$(cat "$TMP/configure.txt")" "CUDA parts left out (RUNNER_CUDA=OFF)" "configure says what it builds"
run_capture "$TMP/build.txt" cmake --build "$B" --target runner runner_unit_tests
expect_success "$TMP/build.txt" "building RUNNER_CUDA=OFF"
echo "built in ${ELAPSED}s"
run_capture "$TMP/ctest.txt" ctest --test-dir "$B" -R '^unit\.' --output-on-failure
expect_success "$TMP/ctest.txt" "unit tests of the RUNNER_CUDA=OFF build"
grep -E 'tests passed|tests failed' "$TMP/ctest.txt"
expect_contains "$("$B/bin/runner" version)" "CUDA: not compiled in" "version of the CPU-only runner"
for f in "$B/bin/runner" "$B/lib/librunner_sdk.so"; do
  readelf -d "$f" | grep -q 'NEEDED.*libtorch_cuda' && fail "the CPU-only $f links libtorch_cuda"
done
finish
