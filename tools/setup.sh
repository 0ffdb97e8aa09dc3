#!/usr/bin/env bash
# Installs everything runner needs on Debian 12, builds it (CMake + Ninja + ccache) and
# installs it under /usr/local so `runner` is on PATH and finds its built-in plugins
# from any folder. Safe to run again: it rebuilds only what changed.
#   tools/setup.sh                 # as root, or as a user with sudo
#   BUILD_DIR=build-debug CMAKE_BUILD_TYPE=Debug tools/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
PREFIX=${PREFIX:-/usr/local}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config python3
  # LibTorch (CPU) and a fast BLAS for it (the default reference BLAS is much slower)
  libtorch-dev libopenblas0-pthread
  # config, plugins, CLI, MPI, logging, gzip, tests
  libyaml-cpp-dev libboost-dev libboost-program-options-dev libopenmpi-dev openmpi-bin
  libspdlog-dev libfmt-dev zlib1g-dev doctest-dev
  # image decoding for the imagefolder dataflow (JPEG: libjpeg-turbo's TurboJPEG API; PNG)
  libturbojpeg0-dev libpng-dev
  # TensorBoard event files (protobuf messages built from runner/proto/tensorboard.proto)
  libprotobuf-dev protobuf-compiler
  # the report test renders report.html in headless Chromium
  chromium
  # the multi-node test's two network namespaces (ip netns, veth)
  iproute2
  # the default job's data: /usr/share/datasets/fashion-mnist/*.gz
  dataset-fashion-mnist
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "== configuring $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" -DCMAKE_INSTALL_PREFIX="$PREFIX"
echo "== building (2 cores: a clean build takes about 5 minutes, a ccache-warm one under 1)"
cmake --build "$BUILD_DIR"
echo "== installing to $PREFIX"
$SUDO cmake --install "$BUILD_DIR" > /dev/null
$SUDO ldconfig
echo "== done: $(command -v runner || echo "$PREFIX/bin/runner (add $PREFIX/bin to PATH)")"
