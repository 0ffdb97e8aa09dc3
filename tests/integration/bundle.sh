#!/usr/bin/env bash
# tools/bundle.sh packs runner for a machine that has only its own PyTorch: the bundle runs in
# a clean root (a new mount namespace, chroot) that holds nothing but the bundle with its data
# slice, the venv's torch/lib and the NVIDIA library folders libtorch_cuda loads, the C library
# and /bin/sh (the launchers' shell), /dev/{null,zero,random,urandom}, /proc, /sys and two tmpfs
# (/tmp, /dev/shm). It trains from another folder, alone and under the bundle's mpirun, and
# its launcher refuses a too-old glibc and a missing or wrong LibTorch with one line each.
source "$(dirname "$0")/lib.sh"
: "${BUILD_DIR:?set by ctest}" "${PYTHON:?set by ctest}"
chroot=$(PATH=$PATH:/usr/sbin:/sbin command -v chroot) || { fail "needs chroot (coreutils)"; finish; }
# A user namespace mapped to root where the kernel allows one, else (as root) a mount namespace.
if unshare -r -m true 2> /dev/null; then ns=(unshare -r -m)
elif unshare -m true 2> /dev/null; then ns=(unshare -m)
else fail "cannot create a mount namespace here (unshare -r -m, unshare -m)"; finish; fi

B=$TMP/bundle
run_capture "$TMP/bundle.txt" "$SOURCE_DIR/tools/bundle.sh" --with-data "$BUILD_DIR" "$B"
expect_success "$TMP/bundle.txt" "tools/bundle.sh"
cat "$TMP/bundle.txt"
for f in bin/runner bin/mpirun libexec/runner lib/librunner_sdk.so lib/runner/plugins/librunner_models.so \
  lib/libyaml-cpp.so.0.7 lib/libmpi.so.40 lib/libstdc++.so.6 openmpi/bin/orted openmpi/bin/orterun \
  openmpi/lib/openmpi/mca_btl_vader.so openmpi/share/openmpi/help-orterun.txt \
  openmpi/etc/openmpi-mca-params.conf data/fashion-mnist/train-images-idx3-ubyte.gz \
  configs/fashion_mnist_mlp.yaml README.txt MANIFEST; do
  [ -e "$B/$f" ] || fail "bundle lacks $f"
done
expect_contains "$(cat "$B/MANIFEST")" "lib/libmpi.so.40	/" "MANIFEST names each file's source"
if grep -E '^lib/(libtorch|libc10|libcu[^r]|libnccl|libcudnn|libgomp|libc\.so|libm\.so|ld-linux)' "$B/MANIFEST"; then
  fail "LibTorch, NVIDIA or C libraries bundled"
fi
kib=$(du -sk "$B" | cut -f1)
[ "$kib" -lt $((64 * 1024)) ] || fail "bundle with data is $kib KiB, over 64 MiB"

echo "== on this machine: LibTorch from a python, a wrong torch version"
torch_lib=$("$PYTHON" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
run_capture "$TMP/py.txt" env -u RUNNER_TORCH_LIB RUNNER_PYTHON="$PYTHON" "$B/bin/runner" version
expect_success "$TMP/py.txt" "runner version with RUNNER_PYTHON"
expect_contains "$(cat "$TMP/py.txt")" "LibTorch 2.11" "LibTorch found through RUNNER_PYTHON"
printf '#!/bin/sh\nprintf "2.10.0+cpu\\n/opt/elsewhere/torch/lib\\n"\n' > "$TMP/old-python"
chmod +x "$TMP/old-python"
run_capture "$TMP/oldpy.txt" env -u RUNNER_TORCH_LIB RUNNER_PYTHON="$TMP/old-python" "$B/bin/runner" version
[ "$RC" -eq 2 ] || fail "torch 2.10 from python: exit $RC, expected 2"
expect_contains "$(cat "$TMP/oldpy.txt")" "has torch 2.10.0+cpu (/opt/elsewhere/torch/lib); this runner was built for LibTorch 2.11" "wrong torch named"

# ---- The clean root. The venv's torch/lib and the NVIDIA folders it loads keep their relative
# places (libtorch_cuda finds them through its RPATH, $ORIGIN/../../nvidia/*/lib).
R=$TMP/root
site=$(dirname "$(dirname "$torch_lib")")
nvidia_dirs=$(ldd "$torch_lib"/libtorch_cuda.so 2> /dev/null | awk '$3 ~ /\/nvidia\// {print $3}' |
  xargs -r -n1 dirname | xargs -r -n1 readlink -f | sort -u)
mkdir -p "$R"/{bin,lib64,lib/x86_64-linux-gnu,dev/shm,proc,sys,tmp,work,srv/runner,opt/torch/torch/lib}
cp "$(readlink -f /bin/sh)" "$R/bin/sh"
cp "$(readlink -f /lib64/ld-linux-x86-64.so.2)" "$R/lib64/ld-linux-x86-64.so.2"
for l in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libutil.so.1 libresolv.so.2; do
  cp "$(readlink -f "/lib/x86_64-linux-gnu/$l")" "$R/lib/x86_64-linux-gnu/$l"
done
touch "$R"/dev/{null,zero,random,urandom} "$R/opt/torch/torch/version.py"
mounts="mount --bind '$B' '$R/srv/runner' && mount -o remount,bind,ro '$R/srv/runner'
mount --bind '$torch_lib' '$R/opt/torch/torch/lib' && mount -o remount,bind,ro '$R/opt/torch/torch/lib'
mount --bind '$torch_lib/../version.py' '$R/opt/torch/torch/version.py'
mount --bind '$TMP/work' '$R/work'
mount -t tmpfs tmpfs '$R/tmp' && mount -t tmpfs tmpfs '$R/dev/shm' && mount --rbind /proc '$R/proc' && mount --rbind /sys '$R/sys'
for d in null zero random urandom; do mount --bind /dev/\$d '$R/dev/'\$d; done"
for d in $nvidia_dirs; do
  rel=${d#"$site"/}
  mkdir -p "$R/opt/torch/$rel"
  mounts="$mounts
mount --bind '$d' '$R/opt/torch/$rel' && mount -o remount,bind,ro '$R/opt/torch/$rel'"
done
[ -n "$nvidia_dirs" ] || [ "${RUNNER_WITH_CUDA:-OFF}" != ON ] || fail "no NVIDIA folders found for libtorch_cuda"
[ ! -e "$R/usr" ] || fail "the clean root has a /usr"
# in_root OUT [VAR=value ...] -- COMMAND...: COMMAND in the clean root, in /work (= $TMP/work),
# with an environment of PATH=/bin, HOME=/work and the VARs; output into OUT, exit code in RC.
in_root() {
  local out=$1 vars=()
  shift
  while [ "$1" != -- ]; do vars+=("$1"); shift; done
  shift
  run_capture "$out" "${ns[@]}" bash -c "set -e; $mounts
    exec env -i PATH=/bin HOME=/work \"\$@\"" in_root "${vars[@]}" "$chroot" "$R" /bin/sh -c 'cd /work && exec "$@"' sh "$@"
}
mkdir -p "$TMP/work/old/bin"
TL=RUNNER_TORCH_LIB=/opt/torch/torch/lib

echo "== clean root: runner version"
in_root "$TMP/version.txt" $TL -- /srv/runner/bin/runner version
expect_success "$TMP/version.txt" "runner version in the clean root"
cat "$TMP/version.txt"
expect_contains "$(cat "$TMP/version.txt")" "LibTorch 2.11.0" "runner version"

echo "== clean root: no LibTorch, a folder without libtorch.so, an old glibc"
in_root "$TMP/none.txt" -- /srv/runner/bin/runner version
[ "$RC" -eq 2 ] || fail "no LibTorch: exit $RC, expected 2"
[ "$(wc -l < "$TMP/none.txt")" -eq 1 ] || fail "no LibTorch: expected one line, got: $(cat "$TMP/none.txt")"
expect_contains "$(cat "$TMP/none.txt")" "runner: LibTorch 2.11 not found: no torch in python3; set RUNNER_TORCH_LIB" "no LibTorch"
in_root "$TMP/empty.txt" RUNNER_TORCH_LIB=/tmp -- /srv/runner/bin/runner version
[ "$RC" -eq 2 ] || fail "RUNNER_TORCH_LIB without libtorch.so: exit $RC, expected 2"
expect_contains "$(cat "$TMP/empty.txt")" "RUNNER_TORCH_LIB=/tmp has no libtorch.so" "RUNNER_TORCH_LIB checked"
sed 's/^build_glibc=.*/build_glibc=2.99/' "$B/bin/runner" > "$TMP/work/old/bin/runner"
chmod +x "$TMP/work/old/bin/runner"
in_root "$TMP/glibc.txt" $TL -- /work/old/bin/runner version
[ "$RC" -eq 2 ] || fail "old glibc: exit $RC, expected 2"
[ "$(wc -l < "$TMP/glibc.txt")" -eq 1 ] || fail "old glibc: expected one line, got: $(cat "$TMP/glibc.txt")"
expect_contains "$(cat "$TMP/glibc.txt")" "runner: this machine has glibc $(getconf GNU_LIBC_VERSION | cut -d' ' -f2), the runner bundle needs glibc >= 2.99" "old glibc"

echo "== clean root: a short training run from /work, alone and under the bundle's mpirun"
train=(/srv/runner/configs/fashion_mnist_mlp.yaml dataflow.root=/srv/runner/data/fashion-mnist num_epochs=1
  dataflow.max_train_samples=1280 dataflow.max_val_samples=500 scheduler.warmup=2 log_every_iters=2
  output_path=runs)
in_root "$TMP/train.txt" $TL -- /srv/runner/bin/runner "${train[@]}"
expect_success "$TMP/train.txt" "training in the clean root"
grep -E "^(data|dist|run folder|test accuracy):" "$TMP/train.txt"
expect_contains "$(cat "$TMP/train.txt")" "Fashion-MNIST from /srv/runner/data/fashion-mnist" "the bundle's data slice"
in_root "$TMP/mpi.txt" $TL OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 -- \
  /srv/runner/bin/mpirun -np 2 /srv/runner/bin/runner "${train[@]}"
expect_success "$TMP/mpi.txt" "mpirun -np 2 in the clean root"
grep -E "^(data|dist|run folder|test accuracy):" "$TMP/mpi.txt"
for ranks in 1 2; do
  run=$(ls -d "$TMP"/work/runs/fashion_mnist_mlp/*_mlp_mpi-$ranks 2> /dev/null | head -1)
  [ -n "$run" ] || { fail "no run folder for $ranks rank(s)"; continue; }
  [ -s "$run/metrics.csv" ] || fail "$run/metrics.csv missing"
  "$PYTHON" - "$run/metrics.jsonl" << 'PY' || fail "$run/metrics.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rows if "train/batch_loss" in r]
val = [r for r in rows if "val/accuracy" in r]
assert len(train) == 5 and len(val) == 1, (len(train), len(val))
assert val[0]["iteration"] == 10 and val[0]["val/accuracy"] > 0.5, val
PY
done
finish
