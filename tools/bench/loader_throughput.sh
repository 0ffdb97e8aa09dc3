#!/usr/bin/env bash
# Input pipeline, images/s (decode + augment + collate into float32 batches, no model):
# the runner's imagefolder loader at 1 and 2 threads against torchvision ImageFolder +
# DataLoader with the same transforms (RandomResizedCrop 224 + flip + normalise) at 1
# and 2 worker processes, on the same generated JPEG folder (ImageNet-like sizes).
#   tools/bench/loader_throughput.sh [images_per_class=128] [classes=8]
# torchvision 0.26 comes from the project venv (tools/python-requirements.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-build/bin}
PER_CLASS=${1:-128}
CLASSES=${2:-8}
OUT=$(mktemp -d /tmp/runner-loader-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
"$BIN/runner_make_data" imagefolder "$OUT/data" --classes "$CLASSES" --train-per-class "$PER_CLASS" \
  --val-per-class 1 --min-size 300 --max-size 500 --png-every 0
cat > "$OUT/cfg.yaml" <<YAML
num_epochs: 1
dataflow: {name: imagefolder, root: $OUT/data, batch_size: 64}
model: resnet8
optimizer: {name: sgd, lr: 0.1}
YAML
cat "$OUT"/data/train/*/* > /dev/null  # page cache warm for both
for threads in 1 2; do
  "$BIN/runner_loader_bench" "$OUT/cfg.yaml" dataflow.num_workers=$threads
done
"$BIN/runner_loader_bench" "$OUT/cfg.yaml" dataflow.num_workers=2 dataflow.dct_scaling=false
PY=${PYTHON:-$(sed -n 's/^Python3_EXECUTABLE:[A-Z]*=//p' build/CMakeCache.txt)}  # the venv's, set by setup.sh
for workers in 1 2; do
  "$PY" tools/bench/torchvision_loader.py "$OUT/data/train" --workers $workers --batch 64
done
