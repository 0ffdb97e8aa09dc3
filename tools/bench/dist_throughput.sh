#!/usr/bin/env bash
# Data parallelism on one machine: samples/s of `mpirun -np 2` (1 thread per rank)
# against one process with 2 threads, for resnet8 and mlp on real Fashion-MNIST
# (batch 128, 1 epoch on the first 25,600 samples for resnet8, all 60,000 for mlp),
# with the share of training time each rank waits on the gradient all-reduce.
# About 2 minutes on 2 cores.
#   tools/bench/dist_throughput.sh [extra overrides...]
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNNER=${RUNNER:-$( [ -x build/bin/runner ] && echo build/bin/runner || command -v runner)}
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
OUT=$(mktemp -d /tmp/runner-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
printf "%-8s %-26s %12s %14s %10s\n" model layout samples/s allreduce-wait accuracy
for model in resnet8 mlp; do
  if [ "$model" = resnet8 ]; then
    args=(configs/fashion_mnist_resnet8.yaml dataflow.max_train_samples=25600)
  else
    args=(configs/fashion_mnist_mlp.yaml)
  fi
  args+=(num_epochs=1 dataflow.batch_size=128 output_path="$OUT" log_every_iters=100000 "$@")
  "$RUNNER" "${args[@]}" threads=2 > "$OUT/one.log" 2>&1
  "${MPIRUN[@]}" -np 2 "$RUNNER" "${args[@]}" threads=1 > "$OUT/two.log" 2>&1
  for layout in one two; do
    log="$OUT/$layout.log"
    sps=$(grep '^training:' "$log" | sed -E 's/.*\(([0-9.]+) samples\/s.*/\1/')
    wait=$(grep '^gradient all-reduce:' "$log" | sed -E 's/.*\(([0-9.]+%) of training.*/\1/' || true)
    acc=$(grep '^test accuracy:' "$log" | awk '{print $3}')
    name=$([ "$layout" = one ] && echo "1 process x 2 threads" || echo "mpirun -np 2 x 1 thread")
    printf "%-8s %-26s %12s %14s %10s\n" "$model" "$name" "$sps" "${wait:--}" "$acc"
  done
done
