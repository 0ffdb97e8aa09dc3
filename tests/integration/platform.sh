#!/usr/bin/env bash
# The LibTorch-from-PyPI traps (README, "Dependencies"), each checked on the real build:
# - no binary links the libcuda.so stub, and the installed runner starts and trains from `/`
#   with no LD_LIBRARY_PATH on this machine, which has no NVIDIA driver;
# - one OpenMP runtime (the wheel's libgomp), no OpenBLAS;
# - no translation unit sees both LibTorch's headers and spdlog, Debian's fmt or Debian's
#   protobuf (the wheel ships its own fmt and an old protobuf under torch/include);
# - -fopenmp only where the fused BatchNorm+ReLU loops (sdk/bn_relu_kernels.cpp) and the one-pass
#   SGD loop (plugins/optimizers/sgd_kernel.cpp) compile, never when linking: their parallel
#   regions run in the wheel's libgomp, linked by path;
# - `runner version` says what CUDA this build has and why it is not available.
source "$(dirname "$0")/lib.sh"
: "${RUNNER_WITH_CUDA:?set by ctest}"
cmake --install "$BUILD_DIR" --prefix "$TMP/prefix" > /dev/null
P="$TMP/prefix"
elves=("$P/bin/runner" "$P/lib/librunner_sdk.so" "$P"/lib/runner/plugins/*.so)
[ ${#elves[@]} -ge 5 ] || fail "expected runner, runner_sdk and 3 plugins installed, got ${#elves[@]} files"

echo "== readelf: NEEDED and RUNPATH of every installed binary and plugin"
for f in "${elves[@]}"; do
  dyn=$(readelf -d "$f")
  grep -q 'NEEDED.*\[libcuda\.so' <<< "$dyn" && fail "$f links the libcuda stub"
  grep -q 'NEEDED.*\[libopenblas' <<< "$dyn" && fail "$f links OpenBLAS"
  grep -q 'RUNPATH\|RPATH' <<< "$dyn" || fail "$f has no RUNPATH"
done
torch_lib=$(dirname "$(ldd "$P/lib/librunner_sdk.so" | awk '/libtorch_cpu.so/ {print $3}')")
for f in "$P/bin/runner" "$P/lib/librunner_sdk.so"; do
  expect_contains "$(readelf -d "$f" | grep -E 'R(UN)?PATH')" "$torch_lib" "$f: RUNPATH names LibTorch's folder"
done
if [ "$RUNNER_WITH_CUDA" = ON ]; then
  readelf -d "$P/bin/runner" | grep -q 'NEEDED.*\[libtorch_cuda.so\]' ||
    fail "a CUDA build must keep libtorch_cuda NEEDED (its kernels register at load)"
fi

echo "== the SDK boundary: plugins see librunner_sdk.so only, the host exports nothing"
exported=$(nm -D --defined-only "$P/bin/runner" | c++filt | grep -c 'runner::' || true)
[ "$exported" -eq 0 ] || fail "bin/runner exports $exported runner:: symbols (the host is built with hidden visibility)"
sdk_syms=$(nm -D --defined-only "$P/lib/librunner_sdk.so" | awk '{print $3}' | sort -u)
[ "$(grep -c . <<< "$sdk_syms")" -ge 20 ] || fail "librunner_sdk.so exports too little"
for plugin in "$P"/lib/runner/plugins/*.so; do
  readelf -d "$plugin" | grep -q 'NEEDED.*\[librunner_sdk.so\]' || fail "$plugin does not link librunner_sdk.so"
  # every runner:: symbol a plugin needs is one the SDK exports
  missing=$(nm -D --undefined-only "$plugin" | awk '{print $2}' | grep '_ZN6runner\|_ZTIN6runner\|_ZTVN6runner' |
    sort -u | comm -23 - <(printf '%s\n' "$sdk_syms") || true)
  [ -z "$missing" ] || fail "$plugin needs runner symbols the SDK does not export: $(c++filt <<< "$missing" | head -3)"
done

echo "== load order: Debian's libstdc++ before LibTorch (libtorch.so exports broken libstdc++ pieces)"
for f in "$P/bin/runner" "$BUILD_DIR/bin/runner_unit_tests"; do
  # (a sanitizer build puts its runtimes, libasan and libubsan, before everything)
  first=$(readelf -d "$f" | awk '/NEEDED/ && !/\[lib(a|ub)san/ {print $5; exit}')
  [ "$first" = "[libstdc++.so.6]" ] || fail "$f: first NEEDED is $first, expected libstdc++.so.6"
done

echo "== ldd: one OpenMP runtime, everything found"
deps=$(env -u LD_LIBRARY_PATH ldd "$P/bin/runner")
grep -q 'not found' <<< "$deps" && fail "unresolved libraries: $(grep 'not found' <<< "$deps")"
[ "$(grep -cE 'libgomp|libiomp|libomp\.so' <<< "$deps")" -eq 1 ] ||
  fail "expected exactly one OpenMP runtime, got: $(grep -E 'libgomp|libiomp|libomp' <<< "$deps")"
grep -q "libgomp.*$torch_lib" <<< "$deps" || fail "libgomp does not come from LibTorch's folder"
grep -q 'libcuda\.so' <<< "$deps" && fail "libcuda loaded at start-up (it must be loaded lazily)"

echo "== the installed runner, from /, no LD_LIBRARY_PATH: version and a short training run"
cd /
out=$(env -u LD_LIBRARY_PATH "$P/bin/runner" version)
expect_contains "$out" "LibTorch 2.11" "version names LibTorch"
if [ "$RUNNER_WITH_CUDA" = ON ]; then
  if [ -e /proc/driver/nvidia/version ]; then
    expect_contains "$out" "CUDA: compiled (" "version's CUDA line"
  else
    expect_contains "$out" "CUDA: compiled (13.0) | available: no (no driver)" "version's CUDA line"
  fi
else
  expect_contains "$out" "CUDA: not compiled in" "version's CUDA line"
fi
run_capture "$TMP/train.txt" env -u LD_LIBRARY_PATH "$P/bin/runner" "$SOURCE_DIR/configs/synthetic_resnet8.yaml" \
  output_path="$TMP/runs" num_epochs=1 dataflow.train_size=256 dataflow.val_size=128 dataflow.batch_size=64
expect_success "$TMP/train.txt" "a training run of the installed runner without a driver"
expect_contains "$(cat "$TMP/train.txt")" "test accuracy:" "the run finished"
expect_contains "$(cat "$TMP/train.txt")" "threads: $(nproc) per rank" "threads default to the cores"
if command -v taskset > /dev/null && [ "$(nproc)" -gt 1 ]; then  # bound to one core: one thread
  run_capture "$TMP/bound.txt" taskset -c 0 "$P/bin/runner" "$SOURCE_DIR/configs/synthetic_resnet8.yaml" \
    output_path="$TMP/runs" num_epochs=1 dataflow.train_size=128 dataflow.val_size=64 dataflow.batch_size=64
  expect_success "$TMP/bound.txt" "a run bound to one core"
  expect_contains "$(cat "$TMP/bound.txt")" "threads: 1 per rank" "threads follow the affinity mask"
fi
cd "$TMP"

echo "== headers each translation unit saw (ninja's deps log)"
"$PYTHON" - "$BUILD_DIR" <<'PY' || fail "header separation"
import json, subprocess, sys
build = sys.argv[1]
ninja = lambda *a: subprocess.run(["ninja", "-C", build, "-t", *a], capture_output=True, text=True, check=True).stdout
# Which units LibTorch's include directories reach (directly, or through the precompiled header).
torch_cmd = {e["output"]: "/torch/include" in e["command"] or "cmake_pch.hxx" in e["command"]
             for e in json.loads(ninja("compdb")) if "output" in e}
units, cur = {}, None
for line in ninja("deps").splitlines():
    if line and not line[0].isspace():
        cur = line.split(":")[0]
        units[cur] = []
    elif line.strip() and cur:
        units[cur].append(line.strip())
bad, torch_units = [], 0
for obj, headers in units.items():
    torch_h = torch_cmd.get(obj, False) or any("/torch/include/" in h for h in headers)
    torch_units += torch_h
    debian = [h for h in headers if h.startswith(("/usr/include/spdlog/", "/usr/include/fmt/", "/usr/include/google/protobuf/"))]
    if torch_h and debian:
        bad.append(f"{obj}: LibTorch headers and {debian[0]}")
    if any("/torch/include/google/protobuf/" in h for h in headers):
        bad.append(f"{obj}: LibTorch's bundled protobuf headers")
if torch_units < 40 or len(units) < 60:
    sys.exit(f"deps log too small ({len(units)} units, {torch_units} with LibTorch): is this a Ninja build?")
clean = [o for o, h in units.items() if not torch_cmd.get(o, True) and any(x.startswith("/usr/include/spdlog/") for x in h)]
if not clean:
    bad.append("no unit includes spdlog: is logging/log.cpp still in the build?")
for b in bad: print(b)
print(f"{len(units)} translation units, {torch_units} with LibTorch headers, {len(bad)} mixing")
sys.exit(1 if bad else 0)
PY
# Ninja's build statements: "build <outputs>: <rule> <inputs>", then indented variables.
python3 - "$BUILD_DIR/build.ninja" <<'PY' || fail "-fopenmp outside the compiles of bn_relu_kernels.cpp and sgd_kernel.cpp (LibTorch brings its own libgomp)"
import re, sys
statements = re.split(r"\n(?=build )", open(sys.argv[1]).read())
bad = [s.split("\n", 1)[0][:160] for s in statements
       if "-fopenmp" in s and not re.match(r"build \S*(bn_relu|sgd)_kernels?\.cpp\.o: CXX_COMPILER", s)]
for b in bad: print(b)
sys.exit(1 if bad else 0)
PY
grep -q "libgomp.*$torch_lib" <<< "$(ldd "$BUILD_DIR/lib/librunner_sdk.so")" || fail "runner_sdk's libgomp is not LibTorch's"
grep -q "libgomp.*$torch_lib" <<< "$(ldd "$BUILD_DIR/lib/runner/plugins/librunner_optim.so")" ||
  fail "runner_optim's libgomp is not LibTorch's"
finish
