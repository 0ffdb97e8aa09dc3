#!/usr/bin/env bash
# runner against a plain PyTorch script of the same recipe on the same torch (the project
# venv's), side by side: resnet8 and mlp on 1x28x28, torchvision's ResNet-18 on 3x32x32,
# float32 and bf16 autocast, batch 128, synthetic data (tools/bench/reference_train.py
# makes its batches once; runner's synthetic dataflow makes them in its loader).
# Prints samples/s of the training loop and the whole process's wall time for each.
#   tools/bench/vs_pytorch_synthetic.sh [iterations=150] [extra runner overrides...]
# Takes about 2.5 minutes on 2 cores at 150 iterations.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNNER=${RUNNER:-$( [ -x build/bin/runner ] && echo build/bin/runner || command -v runner)}
PY=${PYTHON:-$(sed -n 's/^Python3_EXECUTABLE:[A-Z]*=//p' build/CMakeCache.txt 2>/dev/null)}
ITERS=${1:-150}; shift || true
OUT=$(mktemp -d /tmp/runner-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(lscpu | grep -o 'avx512_bf16\|amx_bf16' | sort -u | tr '\n' ' ')"
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)') | $("$RUNNER" version | head -2 | tail -1)"
printf "%-10s %-5s %14s %14s %7s %10s %10s\n" model amp runner-smp/s torch-smp/s ratio runner-s torch-s
wall() { local s=$(date +%s%N); "$@"; echo $(( ($(date +%s%N) - s) / 1000000 )) > "$OUT/ms"; }
for case in resnet8:1:28 mlp:1:28 resnet18:3:32; do
  IFS=: read -r model ch size <<< "$case"
  for amp in none bf16; do
    [ "$model" = mlp ] && [ "$amp" = bf16 ] && continue
    wall "$RUNNER" configs/synthetic_resnet8.yaml output_path="$OUT" model=$model amp=$amp \
      "dataflow={name: synthetic, shape: [$ch, $size, $size], num_classes: 10, train_size: $((ITERS * 128)), val_size: 128, batch_size: 128}" \
      num_epochs=1 log_every_iters=100000 tracking.report=false tracking.tensorboard=false "$@" > "$OUT/log" 2>&1 ||
      { tail -3 "$OUT/log"; exit 1; }
    r_ms=$(cat "$OUT/ms")
    r_sps=$(grep '^training:' "$OUT/log" | sed -E 's/.*\(([0-9.]+) samples\/s.*/\1/')
    wall "$PY" tools/bench/reference_train.py --model $model --amp $amp --iters "$ITERS" > "$OUT/ref"
    p_ms=$(cat "$OUT/ms")
    p_sps=$(awk '{print $4}' "$OUT/ref")
    printf "%-10s %-5s %14s %14s %7s %10.1f %10.1f\n" "$model" $amp "$r_sps" "$p_sps" \
      "$(awk -v a="$r_sps" -v b="$p_sps" 'BEGIN{printf "%.2f", a/b}')" "$(awk -v m=$r_ms 'BEGIN{print m/1000}')" \
      "$(awk -v m=$p_ms 'BEGIN{print m/1000}')"
  done
done
