#!/usr/bin/env bash
# A short real Fashion-MNIST run: the loss goes down, the run folder holds what it should.
source "$(dirname "$0")/lib.sh"
cd "$TMP"
"$RUNNER" "$SOURCE_DIR/configs/fashion_mnist_resnet8.yaml" output_path=runs num_epochs=2 \
  dataflow.max_train_samples=3840 dataflow.max_val_samples=2000 log_every_iters=5 \
  'scheduler.milestones=[[0, 0.0], [10, 0.1], [2ep, 0.0]]' > stdout.txt
cat stdout.txt
run=$(ls -d runs/fashion_mnist_resnet8/*_resnet8_mpi-1)
[ -d "$run" ] || fail "run folder not at runs/fashion_mnist_resnet8/<stamp>_resnet8_mpi-1"
for f in config.yaml run.log model_summary.txt metrics.jsonl; do [ -s "$run/$f" ] || fail "missing $run/$f"; done
expect_contains "$(cat stdout.txt)" "run folder: $run" "stdout names the run folder"
expect_contains "$(cat stdout.txt)" "test accuracy: " "stdout ends with the test accuracy"
expect_contains "$(cat "$run/model_summary.txt")" "Total params: 77,754" "model summary total"
expect_contains "$(cat "$run/model_summary.txt")" "layer3 (BasicBlock)" "model summary layers"
expect_contains "$(cat "$run/run.log")" "epoch 2/2 validation" "run.log has the validation lines"
expect_contains "$(cat "$run/config.yaml")" "max_train_samples: 3840" "config.yaml is the resolved config"
"$PYTHON" - "$run/metrics.jsonl" <<'PY' || fail "metrics.jsonl checks"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
train = [r for r in rows if "train/batch_loss" in r]
val = [r for r in rows if "val/accuracy" in r]
assert len(train) == 12, f"expected 12 train rows (60 iterations / 5), got {len(train)}"
assert all(set(r) == {"iteration", "epoch", "train/batch_loss", "lr"} for r in train)
assert len(val) == 2 and all(set(r) >= {"val/accuracy", "val/loss", "val/top5"} for r in val), val
first = sum(r["train/batch_loss"] for r in train[:3]) / 3
last = sum(r["train/batch_loss"] for r in train[-3:]) / 3
print(f"batch loss: first {first:.3f} -> last {last:.3f}; val/accuracy {val[-1]['val/accuracy']:.4f}")
assert last < 0.7 * first, "loss did not go down"
assert val[-1]["val/accuracy"] > 0.6, "accuracy too low for 2 short epochs"
assert val[-1]["epoch"] == 2 and val[-1]["iteration"] == 60
assert abs(train[-1]["lr"] - 0.1 * 1 / 50) < 1e-12, train[-1]["lr"]  # iteration 60 uses lr(59), one step before 0
PY
finish
