#!/usr/bin/env bash
# Packs runner into one relocatable folder for another x86-64 Linux machine that has its own
# PyTorch 2.11 (the GPU machine: no apt, no network, no MPI). The folder holds runner, its
# built-in plugins, librunner_sdk.so and every shared library they need that is neither
# LibTorch (libtorch*, libc10*, the NVIDIA libraries they pull in: those come from the
# machine's own PyTorch) nor the C library (the machine's glibc must be at least this one's),
# found with ldd, plus Open MPI (orterun, orted, its MCA components, help files and mca
# params, PMIx) relocated through OPAL_PREFIX.
#
#   tools/bundle.sh [options] [BUILD_DIR] OUT_DIR
#     BUILD_DIR    a build folder or an install prefix (bin/runner, lib/librunner_sdk.so,
#                  lib/runner/plugins/*.so); default: build/ of this checkout
#     --with-data  also add a slice of Fashion-MNIST (OUT_DIR/data/fashion-mnist, the IDX .gz
#                  files the fashion_mnist dataflow reads through dataflow.root) and configs/
#     --train N, --test N   images in the slice (default 10000 and 2000; 60000/10000 = all)
#     --data-src DIR        where the full set is (default /usr/share/datasets/fashion-mnist)
#
# The entry points are OUT_DIR/bin/runner and OUT_DIR/bin/mpirun, small sh launchers
# (OUT_DIR/README.txt says how to use them); OUT_DIR/MANIFEST lists every file and its source.
# An OUT_DIR that exists must be empty or an earlier bundle (then it is replaced).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n '10,17s/^# \{0,1\}//p' "$0"; exit 2; }
die() { echo "bundle.sh: $*" >&2; exit 2; }

with_data=0 n_train=10000 n_test=2000 data_src=/usr/share/datasets/fashion-mnist
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --with-data) with_data=1 ;;
    --train) n_train=${2:?--train N}; shift ;;
    --test) n_test=${2:?--test N}; shift ;;
    --data-src) data_src=${2:?--data-src DIR}; shift ;;
    -h | --help) usage ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) args+=("$1") ;;
  esac
  shift
done
case ${#args[@]} in
  1) build=$here/build out=${args[0]} ;;
  2) build=${args[0]} out=${args[1]} ;;
  *) usage ;;
esac
build=$(cd "$build" && pwd) || die "no build folder $build"
[ -x "$build/bin/runner" ] || die "$build/bin/runner not found (build first, or name the build folder)"
[ -f "$build/lib/librunner_sdk.so" ] || die "$build/lib/librunner_sdk.so not found"
plugins=("$build"/lib/runner/plugins/*.so)
[ -f "${plugins[0]}" ] || die "no built-in plugins in $build/lib/runner/plugins"
for tool in ldd readelf ompi_info; do command -v $tool > /dev/null || die "needs $tool"; done

if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  [ -f "$out/MANIFEST" ] && [ -f "$out/bin/runner" ] || die "$out exists and is not an earlier bundle"
  rm -rf "$out"
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
manifest=()  # "path-in-bundle<TAB>source"
# put SRC DEST [MODE]: copy one file (following links) into the bundle and record it.
put() {
  mkdir -p "$(dirname "$out/$2")"
  cp -L "$1" "$out/$2"
  chmod "${3:-0644}" "$out/$2"
  manifest+=("$2	$(readlink -f "$1")")
}

# ---- What the build links: LibTorch's folder and the C library are the machine's own.
torch_lib=$(ldd "$build/lib/librunner_sdk.so" | awk '$1 == "libtorch_cpu.so" {print $3}')
[ -n "$torch_lib" ] || die "ldd does not resolve libtorch_cpu.so for $build/lib/librunner_sdk.so"
torch_lib=$(dirname "$(readlink -f "$torch_lib")")
torch_version=$(sed -n "s/^__version__ = '\([^']*\)'.*/\1/p" "$torch_lib/../version.py" 2> /dev/null || true)
torch_series=$(sed -n 's/^\([0-9]*\.[0-9]*\).*/\1/p' <<< "$torch_version")
[ -n "$torch_series" ] || die "cannot read the torch version from $torch_lib/../version.py"
nvidia_dir=$(readlink -f "$torch_lib/../../nvidia" 2> /dev/null || echo /nonexistent)
glibc=$(getconf GNU_LIBC_VERSION 2> /dev/null | awk '{print $2}')
[[ $glibc =~ ^[0-9]+\.[0-9]+$ ]] || glibc=$(ldd --version | awk 'NR == 1 {print $NF}')
[[ $glibc =~ ^[0-9]+\.[0-9]+$ ]] || die "cannot tell this machine's glibc version"
# Part of glibc, never bundled (the target's own must match its ld.so).
is_glibc() {
  case $1 in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | \
      libutil.so.* | libresolv.so.* | libanl.so.* | libnsl.so.* | libmvec.so.* | libBrokenLocale.so.* | \
      libnss_*.so.* | libthread_db.so.* | libc_malloc_debug.so.*) return 0 ;;
  esac
  return 1
}
is_torch() {  # SONAME PATH
  case $1 in libtorch*.so* | libc10*.so* | libcaffe2*.so* | libshm.so*) return 0 ;; esac
  case $(readlink -f "$2") in "$torch_lib"/* | "$nvidia_dir"/*) return 0 ;; esac
  return 1
}

# ---- runner, the SDK, the built-in plugins. The real binary lives in libexec/: runner finds
# its built-in plugins at <binary>/../lib/runner/plugins (README, Plugins), i.e. lib/runner/plugins.
elves=()  # source paths whose dependencies are bundled
put "$build/bin/runner" libexec/runner 0755
put "$build/lib/librunner_sdk.so" lib/librunner_sdk.so
elves+=("$build/bin/runner" "$build/lib/librunner_sdk.so")
for p in "${plugins[@]}"; do
  put "$p" "lib/runner/plugins/$(basename "$p")"
  elves+=("$p")
done

# ---- Open MPI, relocated: OPAL_* variables set by the launchers point into openmpi/.
ompi_path() { ompi_info --parsable --path "$1" | awk -F: -v k="$1" '$2 == k {print $3; exit}'; }
ompi_bin=$(ompi_path bindir) ompi_pkglib=$(ompi_path pkglibdir)
ompi_data=$(ompi_path pkgdatadir) ompi_etc=$(ompi_path sysconfdir)
mpi_lib=$(ldd "$build/bin/runner" | awk '$1 ~ /^libmpi\.so/ {print $3}')
[ -n "$mpi_lib" ] || die "runner does not link libmpi"
for t in orterun orted; do
  [ -x "$ompi_bin/$t" ] || die "$ompi_bin/$t not found (Open MPI's openmpi-bin)"
  put "$ompi_bin/$t" "openmpi/bin/$t" 0755
  elves+=("$ompi_bin/$t")
done
# Components: everything except network fabrics (UCX, libfabric, verbs, PSM: their user-space
# drivers must match the host's hardware, and one node talks over shared memory and TCP) and
# OpenSHMEM's frameworks (runner uses MPI only).
skipped=()
for c in "$ompi_pkglib"/*.so; do
  case $(basename "$c") in
    *_ucx.so | *_ofi.so | mca_btl_openib.so | mca_mtl_psm*.so | mca_atomic_* | mca_memheap_* | mca_scoll_* | \
      mca_spml_* | mca_sshmem_*)
      skipped+=("$(basename "$c" .so)") ;;
    *) put "$c" "openmpi/lib/openmpi/$(basename "$c")"; elves+=("$c") ;;
  esac
done
for f in "$ompi_data"/help-*.txt; do put "$f" "openmpi/share/openmpi/$(basename "$f")"; done
for f in openmpi-mca-params.conf openmpi-default-hostfile; do
  [ ! -f "$ompi_etc/$f" ] || put "$ompi_etc/$f" "openmpi/etc/$f"
done
# PMIx, when Open MPI uses an external one (Debian: libpmix.so.2 with its own plugins).
pmix_lib=$(ldd "$ompi_pkglib"/mca_pmix_*.so 2> /dev/null | awk '$1 ~ /^libpmix\.so/ {print $3; exit}')
if [ -n "$pmix_lib" ]; then
  pmix_prefix=$(dirname "$(dirname "$(readlink -f "$pmix_lib")")")
  for c in "$pmix_prefix"/lib/pmix/*.so; do
    [ -f "$c" ] || continue
    put "$c" "pmix/lib/pmix/$(basename "$c")"
    elves+=("$c")
  done
  for f in "$pmix_prefix"/share/pmix/help-*.txt; do
    [ -f "$f" ] && put "$f" "pmix/share/pmix/$(basename "$f")"
  done
fi

# ---- Every other shared library they need, transitively (ldd resolves each file as the loader
# would here, RUNPATHs included), into lib/ under its soname.
declare -A seen=()
unresolved=()
while read -r name arrow path _; do
  [ "$arrow" = "=>" ] || continue
  if [ "$path" = "not" ]; then unresolved+=("$name"); continue; fi
  [ -z "${seen[$name]:-}" ] || continue
  seen[$name]=1
  if is_glibc "$name" || is_torch "$name" "$path" || [ "$name" = librunner_sdk.so ]; then continue; fi
  put "$path" "lib/$name"
done < <(for e in "${elves[@]}"; do ldd "$e"; done | sort -u)
[ ${#unresolved[@]} -eq 0 ] || die "ldd cannot resolve: $(printf '%s\n' "${unresolved[@]}" | sort -u | tr '\n' ' ')"

# ---- Strip symbols the loader does not need (dynamic symbols stay).
if command -v strip > /dev/null; then
  while IFS= read -r -d '' f; do
    if [ "$(head -c 4 "$f")" = $'\x7fELF' ]; then strip --strip-unneeded "$f"; fi
  done < <(find "$out" -type f -print0)
fi

# ---- The launchers: one template, two targets.
launcher() {  # NAME TARGET WHAT
  cat > "$out/bin/$1" << EOF
#!/bin/sh
# $1 from a runner bundle (written by tools/bundle.sh; see ../README.txt): checks glibc, finds
# LibTorch $torch_series, sets the library path and Open MPI's prefix, then runs $3.
# It needs nothing but /bin/sh: getconf, readlink and python3 are used when present.
build_glibc=$glibc
torch_series=$torch_series
target=$2
EOF
  cat >> "$out/bin/$1" << 'EOF'
me=${0##*/}
nl='
'
self=$0
case $self in */*) ;; *) if [ -f "$self" ]; then self=./$self; else self=$(command -v "$self"); fi ;; esac
if [ -L "$self" ] && command -v readlink > /dev/null 2>&1; then self=$(readlink -f -- "$self"); fi
bundle=$(cd -P -- "${self%/*}/.." && pwd -P) || exit 2

# glibc: this machine's must be at least the build machine's.
host_glibc=
if command -v getconf > /dev/null 2>&1; then
  v=$(getconf GNU_LIBC_VERSION 2> /dev/null) && host_glibc=${v#glibc }
fi
if [ -z "$host_glibc" ]; then  # no getconf: glibc's libc.so.6 prints its version when run
  for libc in /lib/x86_64-linux-gnu/libc.so.6 /usr/lib/x86_64-linux-gnu/libc.so.6 /lib64/libc.so.6 \
    /usr/lib64/libc.so.6 /lib/libc.so.6; do
    [ -x "$libc" ] || continue
    v=$("$libc" 2> /dev/null) || continue
    case $v in *"release version "*) ;; *) continue ;; esac
    v=${v#*release version }
    host_glibc=${v%%[!0-9.]*}
    host_glibc=${host_glibc%.}
    break
  done
fi
version_ge() {  # A B: A >= B for MAJOR.MINOR versions
  a1=${1%%.*} a2=${1#*.} b1=${2%%.*} b2=${2#*.}
  a2=${a2%%.*} b2=${b2%%.*}
  [ "$a1" -gt "$b1" ] || { [ "$a1" -eq "$b1" ] && [ "$a2" -ge "$b2" ]; }
}
case $host_glibc in
  [0-9]*.[0-9]*)
    if ! version_ge "$host_glibc" "$build_glibc" 2> /dev/null; then
      echo "$me: this machine has glibc $host_glibc, the runner bundle needs glibc >= $build_glibc (the build machine's): build runner on this machine or one with an older glibc" >&2
      exit 2
    fi ;;
  *) echo "$me: warning: cannot tell this machine's glibc version (the bundle needs >= $build_glibc)" >&2 ;;
esac

# LibTorch: RUNNER_TORCH_LIB, else the torch of RUNNER_PYTHON or python3.
torch_ok() {  # VERSION
  case $1 in "$torch_series" | "$torch_series".* | "$torch_series"+*) return 0 ;; esac
  return 1
}
torch_lib= torch_from=
if [ -n "${RUNNER_TORCH_LIB:-}" ]; then
  if [ ! -f "$RUNNER_TORCH_LIB/libtorch.so" ]; then
    echo "$me: RUNNER_TORCH_LIB=$RUNNER_TORCH_LIB has no libtorch.so (name the torch/lib folder of a PyTorch $torch_series installation)" >&2
    exit 2
  fi
  torch_lib=$RUNNER_TORCH_LIB torch_from=RUNNER_TORCH_LIB v=
  if [ -f "$torch_lib/../version.py" ]; then  # a pip/conda install has torch/version.py
    while IFS= read -r line; do
      case $line in "__version__ = "*) v=${line#*\'}; v=${v%%\'*} ;; esac
    done < "$torch_lib/../version.py"
    if [ -n "${v:-}" ] && ! torch_ok "$v"; then
      echo "$me: RUNNER_TORCH_LIB=$RUNNER_TORCH_LIB is torch $v; this runner was built for LibTorch $torch_series" >&2
      exit 2
    fi
  fi
else
  tried=
  for py in ${RUNNER_PYTHON:+"$RUNNER_PYTHON"} python3; do
    tried="$tried${tried:+, }$py"
    command -v "$py" > /dev/null 2>&1 || continue
    # Finds torch without importing it (an import takes seconds; every rank runs this).
    out=$("$py" -c '
import importlib.util, os
d = os.path.dirname(importlib.util.find_spec("torch").origin)
try:
    ns = {}
    exec(open(os.path.join(d, "version.py")).read(), ns)
    v = ns["__version__"]
except Exception:
    import torch
    v = torch.__version__
print(v)
print(os.path.join(d, "lib"))' 2> /dev/null) || continue
    v=${out%%"$nl"*} lib=${out#*"$nl"}
    if ! torch_ok "$v"; then
      echo "$me: $py has torch $v ($lib); this runner was built for LibTorch $torch_series (set RUNNER_PYTHON or RUNNER_TORCH_LIB)" >&2
      exit 2
    fi
    torch_lib=$lib torch_from=$py
    break
  done
  if [ -z "$torch_lib" ] && [ "$target" = libexec/runner ]; then
    echo "$me: LibTorch $torch_series not found: no torch in $tried; set RUNNER_TORCH_LIB to a folder with libtorch.so (torch/lib of a PyTorch $torch_series installation) or RUNNER_PYTHON to a python with torch $torch_series" >&2
    exit 2
  fi
fi
# Ranks started by this bundle's mpirun need not look again.
[ -z "$torch_lib" ] || export RUNNER_TORCH_LIB="$torch_lib"

# runner itself links CUDA's runtime: it comes from the NVIDIA wheels beside a pip-installed torch
# (libtorch_cuda finds them through its RPATH, an executable does not).
nvidia=
if [ -n "$torch_lib" ]; then
  for d in "$torch_lib"/../../nvidia/*/lib; do [ ! -d "$d" ] || nvidia="$nvidia:$d"; done
fi
export LD_LIBRARY_PATH="$bundle/lib${torch_lib:+:$torch_lib}$nvidia${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Open MPI and PMIx find their components, help files and mca params here, not where they were built.
export OPAL_PREFIX="$bundle/openmpi" OPAL_EXEC_PREFIX="$bundle/openmpi" OPAL_BINDIR="$bundle/openmpi/bin"
export OPAL_LIBDIR="$bundle/lib" OPAL_PKGLIBDIR="$bundle/openmpi/lib/openmpi"
export OPAL_DATAROOTDIR="$bundle/openmpi/share" OPAL_DATADIR="$bundle/openmpi/share"
export OPAL_PKGDATADIR="$bundle/openmpi/share/openmpi" OPAL_SYSCONFDIR="$bundle/openmpi/etc"
export PMIX_PREFIX="$bundle/pmix" PMIX_PKGLIBDIR="$bundle/pmix/lib/pmix" PMIX_PKGDATADIR="$bundle/pmix/share/pmix"
export PMIX_SYSCONFDIR="$bundle/pmix/etc" PMIX_MCA_mca_base_component_path="$bundle/pmix/lib/pmix"
# Without ssh or rsh Open MPI's rsh launcher aborts even for local ranks: launch on this node only.
if [ -z "${OMPI_MCA_plm:-}${OMPI_MCA_plm_rsh_agent:-}" ] && ! command -v ssh > /dev/null 2>&1 &&
  ! command -v rsh > /dev/null 2>&1; then
  export OMPI_MCA_plm=isolated
fi
# hwloc must not load the host's plugins (built against another hwloc).
export HWLOC_PLUGINS_PATH="$bundle/lib/hwloc"
exec "$bundle/$target" "$@"
EOF
  chmod 0755 "$out/bin/$1"
  manifest+=("bin/$1	(launcher written by tools/bundle.sh; runs $2)")
}
mkdir -p "$out/bin"
launcher runner libexec/runner "runner"
launcher mpirun openmpi/bin/orterun "Open MPI's mpirun (orterun)"

# ---- Data: the first N images of Fashion-MNIST in the original IDX .gz format, and configs/.
# idx_slice SRC DST N HEADER_BYTES ITEM_BYTES: the same header with the count set to N.
idx_slice() {
  local n=$3 hl=$4 item=$5 have
  have=$( (gzip -dc "$1" 2> /dev/null || true) | head -c 8 | od -An -tu1 | awk '{print (($5 * 256 + $6) * 256 + $7) * 256 + $8}')
  [ "$n" -le "$have" ] || die "$1 has $have items, asked for $n"
  mkdir -p "$(dirname "$out/$2")"
  if [ "$n" -eq "$have" ]; then
    cp "$1" "$out/$2"
  else
    (
      set +o pipefail  # head closes the pipes early
      gzip -dc "$1" | head -c 4
      printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))"
      gzip -dc "$1" | head -c "$hl" | tail -c $((hl - 8))
      gzip -dc "$1" | tail -c +$((hl + 1)) | head -c $((n * item))
    ) | gzip -9n > "$out/$2"
    [ "$(gzip -dc "$out/$2" | wc -c)" -eq $((hl + n * item)) ] || die "could not write $out/$2"
  fi
  manifest+=("$2	$1 (first $n of $have)")
}
if [ "$with_data" = 1 ]; then
  d=data/fashion-mnist
  idx_slice "$data_src/train-images-idx3-ubyte.gz" "$d/train-images-idx3-ubyte.gz" "$n_train" 16 784
  idx_slice "$data_src/train-labels-idx1-ubyte.gz" "$d/train-labels-idx1-ubyte.gz" "$n_train" 8 1
  idx_slice "$data_src/t10k-images-idx3-ubyte.gz" "$d/t10k-images-idx3-ubyte.gz" "$n_test" 16 784
  idx_slice "$data_src/t10k-labels-idx1-ubyte.gz" "$d/t10k-labels-idx1-ubyte.gz" "$n_test" 8 1
  while IFS= read -r f; do put "$here/$f" "$f"; done < <(cd "$here" && find configs -type f | sort)
fi

# ---- README.txt and MANIFEST.
cat > "$out/README.txt" << EOF
runner bundle for LibTorch $torch_series, x86-64 Linux with glibc >= $glibc.
Needs a PyTorch $torch_series installation on this machine (its libtorch, c10 and NVIDIA libraries are not in here).
  bin/runner CONFIG [key=value ...]              e.g. bin/runner configs/fashion_mnist_resnet8.yaml dataflow.root=\$PWD/data/fashion-mnist
  bin/mpirun -np 2 bin/runner CONFIG ...         this bundle's Open MPI (one node; add --allow-run-as-root as root)
LibTorch is found from RUNNER_TORCH_LIB (a torch/lib folder with libtorch.so), else from the torch of RUNNER_PYTHON, else of python3.
The launchers set LD_LIBRARY_PATH (lib/ + LibTorch), OPAL_PREFIX and PMIX_* (openmpi/, pmix/) and run libexec/runner or openmpi/bin/orterun.
Built-in plugins are in lib/runner/plugins; RUNNER_PLUGIN_PATH and --plugin-path add more. MANIFEST lists every file and its source.
EOF
manifest+=("README.txt	(written by tools/bundle.sh)" "MANIFEST	(written by tools/bundle.sh)")
{
  echo "# runner bundle: glibc >= $glibc (build machine), LibTorch $torch_version from the host ($torch_lib at bundle time)"
  echo "# Open MPI components left out (fabrics, OpenSHMEM): ${skipped[*]:-none}"
  printf '%s\n' "${manifest[@]}" | sort
} > "$out/MANIFEST"

size() { du -sk "$1" | awk '{printf "%.1f MiB", $1 / 1024}'; }
echo "bundle: $out, $(size "$out") in $(find "$out" -type f | wc -l) files (glibc >= $glibc, LibTorch $torch_series from the host)"
if [ "$with_data" = 1 ]; then
  echo "data: $out/data/fashion-mnist ($n_train train, $n_test test images), $(size "$out/data")"
fi
