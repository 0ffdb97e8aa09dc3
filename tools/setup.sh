#!/usr/bin/env bash
# Installs everything runner needs on Debian 12, builds it (CMake + Ninja + ccache) and
# installs it under /usr/local so `runner` is on PATH and finds its built-in plugins
# from any folder. Safe to run again: nothing is downloaded twice, and only what changed
# is rebuilt.
#   tools/setup.sh                 # as root, or as a user with sudo
#   BUILD_DIR=build-debug CMAKE_BUILD_TYPE=Debug tools/setup.sh
#   RUNNER_CUDA=OFF tools/setup.sh # CPU-only runner (no libtorch_cuda linked)
#
# LibTorch comes from PyPI's torch wheel (tools/python-requirements.txt pins it), installed
# into a virtual environment outside the repository, keyed on the torch version so every
# clone on the machine shares it: /opt/runner/venv-torch<version> (override: RUNNER_VENV).
# pip's download cache (~/.cache/pip) is kept, so a new venv does not download again.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
PREFIX=${PREFIX:-/usr/local}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi

PACKAGES=(
  # toolchain; python3-venv for the project's venv (Debian 12 refuses system-wide pip)
  g++ cmake ninja-build ccache pkg-config python3 python3-venv
  # config, plugins, CLI, MPI, logging, gzip, tests
  libyaml-cpp-dev libboost-dev libboost-program-options-dev libopenmpi-dev openmpi-bin
  libspdlog-dev libfmt-dev zlib1g-dev doctest-dev
  # image decoding for the imagefolder dataflow (JPEG: libjpeg-turbo's TurboJPEG API; PNG)
  libturbojpeg0-dev libpng-dev
  # the tensors dataflow reads .safetensors headers (JSON)
  nlohmann-json3-dev
  # Gloo's headers, for LibTorch's ProcessGroupGloo under torchrun (the wheel lacks them)
  libgloo-dev
  # the MLflow tracking-server client (REST over HTTP(S)); openssl makes the certificate of the
  # test's HTTPS gateway
  libcurl4-openssl-dev openssl
  # TensorBoard event files (protobuf messages built from runner/proto/tensorboard.proto)
  libprotobuf-dev protobuf-compiler
  # the report test renders report.html in headless Chromium
  chromium
  # the multi-node test's two network namespaces (ip netns, veth)
  iproute2
  # the Slurm test's one-node cluster (tools/slurm/local_cluster.sh); Slurm's srun --mpi=pmix
  # plugin loads the unversioned libpmix.so, which only libpmix-dev provides
  slurm-wlm munge libpmix-dev
  # the default job's data: /usr/share/datasets/fashion-mnist/*.gz
  dataset-fashion-mnist
  # configs/text_gpt.yaml's text: 2.5 MB of fortune cookies in /usr/share/games/fortunes
  fortunes
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

# ---- LibTorch: the torch wheel in the project's venv
REQS=tools/python-requirements.txt
TORCH_PIN=$(sed -n 's/^torch==\([^ ]*\).*/\1/p' "$REQS")
VENV=${RUNNER_VENV:-/opt/runner/venv-torch$TORCH_PIN}
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
  echo "== creating $VENV"
  $SUDO mkdir -p "$(dirname "$VENV")"
  [ -z "$SUDO" ] || $SUDO chown "$(id -u):$(id -g)" "$(dirname "$VENV")"
  /usr/bin/python3 -m venv "$VENV"
fi
stamp="$VENV/.runner-requirements"
if ! cmp -s "$REQS" "$stamp"; then
  echo "== pip: $(grep -v '^#' "$REQS" | tr '\n' ' ')(first time: about 2.7 GB)"
  "$PY" -m pip install -q -r "$REQS"
  cp "$REQS" "$stamp"
fi

# CMake finds LibTorch, the tests' python and the CUDA toolkit (/usr/local/cuda) from the venv
# itself (CMakeLists.txt, RUNNER_VENV): the one place that knows the venv's layout.
echo "== configuring $BUILD_DIR (LibTorch from $VENV)"
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" \
  -DCMAKE_INSTALL_PREFIX="$PREFIX" -DRUNNER_VENV="$VENV" -DRUNNER_CUDA="${RUNNER_CUDA:-ON}"
echo "== building (2 cores: a clean build takes about 8 minutes, a ccache-warm one about 1)"
cmake --build "$BUILD_DIR"
echo "== installing to $PREFIX"
$SUDO cmake --install "$BUILD_DIR" > /dev/null
$SUDO ldconfig
echo "== done: $(command -v runner || echo "$PREFIX/bin/runner (add $PREFIX/bin to PATH)")"
