#!/usr/bin/env bash
# The foundation benchmark: the same recipe (resnet8, batch 128, crop+flip, SGD Nesterov
# lr 0.1 wd 5e-4, warmup over epoch 1 then linear decay to 0, 3 epochs, partial last
# batch kept) on real Fashion-MNIST and on synthetic tensors of the same shape.
# Prints samples/s of the training loop, data-wait share, whole-process wall time and
# test accuracy for each. Takes about 7 minutes on 2 cores.
#   tools/bench/throughput.sh [extra overrides...]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNNER=${RUNNER:-$( [ -x build/bin/runner ] && echo build/bin/runner || command -v runner)}
OUT=$(mktemp -d /tmp/runner-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
printf "%-10s %14s %10s %10s %10s\n" data samples/s data-wait wall-s accuracy
for cfg in fashion_mnist_resnet8_aug synthetic_resnet8; do
  start=$(date +%s%N)
  "$RUNNER" "configs/$cfg.yaml" output_path="$OUT" log_every_iters=100000 "$@" > "$OUT/$cfg.log" 2>&1
  wall_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  line=$(grep '^training:' "$OUT/$cfg.log")
  sps=$(sed -E 's/.*\(([0-9.]+) samples\/s.*/\1/' <<< "$line")
  wait=$(sed -E 's/.*data wait ([0-9.]+%).*/\1/' <<< "$line")
  acc=$(grep '^test accuracy:' "$OUT/$cfg.log" | awk '{print $3}')
  printf "%-10s %14s %10s %7d.%01d %10s\n" "${cfg%%_resnet8*}" "$sps" "$wait" $((wall_ms / 1000)) $((wall_ms % 1000 / 100)) "$acc"
done
