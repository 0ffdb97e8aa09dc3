#!/usr/bin/env bash
# Training throughput (samples/s of the training loop) in float32 and with bfloat16
# autocast on the CPU: resnet8 on Fashion-MNIST-shaped tensors (1x28x28, batch 128) and
# ResNet-18 on CIFAR-shaped tensors (3x32x32, torchvision's network, batch 128), synthetic
# data so the input pipeline does not count.
#   tools/bench/precision_throughput.sh [iterations=150]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNNER=${RUNNER:-$( [ -x build/bin/runner ] && echo build/bin/runner || command -v runner)}
ITERS=${1:-150}
OUT=$(mktemp -d /tmp/runner-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
printf "%-16s %-5s %-14s %12s\n" model amp layout samples/s
for model in resnet8:1 resnet18:3; do
  name=${model%%:*}; ch=${model##*:}
  size=$([ "$ch" = 1 ] && echo 28 || echo 32)
  for amp in none bf16; do
    for cl in false true; do
      "$RUNNER" configs/synthetic_resnet8.yaml output_path="$OUT" model=$name amp=$amp channels_last=$cl \
        "dataflow={name: synthetic, shape: [$ch, $size, $size], num_classes: 10, train_size: $((ITERS * 128)), val_size: 128, batch_size: 128}" \
        num_epochs=1 log_every_iters=100000 > "$OUT/log" 2>&1 || { tail -3 "$OUT/log"; exit 1; }
      sps=$(grep '^training:' "$OUT/log" | sed -E 's/.*\(([0-9.]+) samples\/s.*/\1/')
      printf "%-16s %-5s %-14s %12s\n" "$name-${ch}x$size" $amp "$([ $cl = true ] && echo channels_last || echo NCHW)" "$sps"
    done
  done
done
