#!/usr/bin/env bash
# Builds and runs the config fuzzer (tests/fuzz/config_fuzzer.cpp) with clang's
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer. The config code is
# and the plugin registry are compiled into the fuzzer (instrumented); the SDK comes from
# build/lib/librunner_sdk.so.
#   tools/fuzz/config_fuzzer.sh [RUNS=100000] [extra libFuzzer flags...]
# RUNS=0 only replays the corpus (what ctest does). New interesting inputs go to
# tests/fuzz/corpus (minimise it with -merge=1 before committing); crashes land in
# <build>/fuzz/. BUILD_DIR selects the runner build (default: build).
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-100000}
shift || true
B=${BUILD_DIR:-$PWD/build}
[ -f "$B/lib/librunner_sdk.so" ] || { echo "build the runner first (tools/setup.sh)" >&2; exit 2; }
mkdir -p "$B/fuzz"
exe=$B/fuzz/config_fuzzer
srcs=(tests/fuzz/config_fuzzer.cpp runner/src/config/tree.cpp runner/src/config/config.cpp runner/src/util/strings.cpp
      runner/src/registry/registry.cpp)
# No clang with libFuzzer here: say so, exit 77 (ctest counts it as skipped).
probe=$B/fuzz/probe
if ! echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' |
    clang++ -x c++ -fsanitize=fuzzer - -o "$probe" 2> /dev/null; then
  echo "skipped: clang++ with libFuzzer (-fsanitize=fuzzer) is not available"
  exit 77
fi
# LibTorch's headers and libraries: the ones this build found (the venv's torch wheel).
torch_root=$(sed -n 's/^Torch_DIR:[A-Z]*=//p' "$B/CMakeCache.txt")/../../..
TI=$torch_root/include
TL=$(cd "$torch_root/lib" && pwd)
if [ ! -x "$exe" ] || [ -n "$(find "${srcs[@]}" runner/src/config runner/src/registry runner/include -newer "$exe" 2>/dev/null | head -1)" ]; then
  echo "building $exe (clang++, about 2 minutes)"
  # -lstdc++ first: libtorch.so exports broken pieces of a newer libstdc++ (README, Dependencies).
  clang++ -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize=vptr -D_GLIBCXX_USE_CXX11_ABI=1 \
    -DRUNNER_BUILTIN_PLUGINS="\"$B/lib/runner/plugins\"" -DOMPI_SKIP_MPICXX=1 -DFMT_HEADER_ONLY=1 -DBOOST_DLL_USE_STD_FS \
    -Irunner/src -Irunner/include -isystem "$TI" -isystem "$TI/torch/csrc/api/include" \
    -isystem /usr/lib/x86_64-linux-gnu/openmpi/include \
    "${srcs[@]}" -o "$exe" -Wl,--no-as-needed -lstdc++ \
    -L"$B/lib" -lrunner_sdk -Wl,-rpath,"$B/lib" -L"$TL" -Wl,-rpath,"$TL" -ltorch -ltorch_cpu -lc10 -lyaml-cpp -ldl
fi
# Seeds: the kept corpus, the shipped configs and the bad-config corpus.
mkdir -p tests/fuzz/corpus "$B/fuzz/seeds"
cp configs/*.yaml configs/_base_/*.yaml tests/fixtures/bad_configs/*.yaml "$B/fuzz/seeds/"
ASAN_OPTIONS=detect_leaks=0 "$exe" -runs="$runs" -max_len=4096 -timeout=10 -artifact_prefix="$B/fuzz/" \
  -dict=tests/fuzz/config.dict "$@" tests/fuzz/corpus "$B/fuzz/seeds"
