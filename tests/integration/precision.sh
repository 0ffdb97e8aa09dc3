#!/usr/bin/env bash
# The training step's options, each against the plain step: bf16 autocast reaches the
# float32 accuracy (resnet8, Fashion-MNIST, same short schedule); gradient accumulation
# gives the same losses as one big batch (1 process and under mpirun); channels_last
# the same losses as NCHW, and its fused BatchNorm+ReLU as LibTorch's operators; gradient clipping at a huge norm changes nothing and at a
# tiny one freezes training; fp16 on the CPU is a clear config error.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dist_lib.sh"
cd "$TMP"
write_equivalence_config eq.yaml

# ---- gradient accumulation: 4 micro-batches of 16 = one batch of 64 (mlp, no BatchNorm)
for k in 1 4; do
  run_capture "acc$k.txt" "$RUNNER" eq.yaml dataflow.max_train_samples=1920 grad_accumulation_steps=$k output_path=acc$k
  expect_success "acc$k.txt" "grad_accumulation_steps=$k run failed"
done
expect_contains "$(cat acc4.txt)" "4 micro-batch(es) per step" "accumulation is logged"
compare_runs acc1/eq/*/ acc4/eq/*/ 1e-5 0.002 30 || fail "accumulation 4 vs 1"
# Under mpirun: 2 ranks x 2 micro-batches of 16 = the 1-process run above.
run_capture acc_mpi.txt "${MPIRUN[@]}" -np 2 "$RUNNER" eq.yaml dataflow.max_train_samples=1920 grad_accumulation_steps=2 \
  threads=1 output_path=acc_mpi
expect_success acc_mpi.txt "mpirun accumulation run failed"
# 1e-4 like every cross-rank equivalence check: the all-reduce sums the two ranks' halves in
# another order, and with LibTorch 2.11's MKL kernels that rounding grows to 5.2e-5 by iteration
# 27 (it stays at 1.3e-7 for 17 iterations; 1.13 with OpenBLAS stayed under 1e-5).
compare_runs acc1/eq/*/ acc_mpi/eq/*/ 1e-4 0.002 30 || fail "mpirun accumulation 2x2 vs 1x1"

# ---- gradient clipping
run_capture clip_huge.txt "$RUNNER" eq.yaml dataflow.max_train_samples=1920 grad_clip_norm=1e9 output_path=clip_huge
expect_success clip_huge.txt "run clipped at 1e9"
run_capture clip_tiny.txt "$RUNNER" eq.yaml dataflow.max_train_samples=1920 grad_clip_norm=1e-4 output_path=clip_tiny \
  optimizer.momentum=0
expect_success clip_tiny.txt "clipped run failed"
expect_contains "$(cat clip_tiny.txt)" "gradient clipping at L2 norm 0.0001" "clipping is logged"
cmp -s acc1/eq/*/metrics.jsonl clip_huge/eq/*/metrics.jsonl ||
  fail "clipping at norm 1e9 changed the run"
"$PYTHON" - acc1/eq/*/ clip_tiny/eq/*/ <<'PY' || fail "tiny clipping norm"
import json, sys
def losses(run):
    return [json.loads(l)["train/batch_loss"] for l in open(run + "/metrics.jsonl") if "train/batch_loss" in l]
free, clipped = losses(sys.argv[1]), losses(sys.argv[2])
# lr 0.02 x norm 1e-4: each step moves the weights by at most 2e-6; the loss stays put.
print(f"last-5 mean loss: unclipped {sum(free[-5:]) / 5:.4f}, clipped {sum(clipped[-5:]) / 5:.4f}, first {clipped[0]:.4f}")
assert sum(free[-5:]) / 5 < 0.8 * free[0], "the unclipped run should learn"
assert abs(sum(clipped[-5:]) / 5 - sum(clipped[:5]) / 5) < 0.1 * clipped[0], "clipped run moved too much"
PY

# ---- channels_last: the same losses as NCHW (resnet8, deterministic)
cat > cl.yaml <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_resnet8.yaml]
num_epochs: 1
deterministic: true
log_every_iters: 1
output_path: runs
dataflow: {batch_size: 64, max_train_samples: 640, max_val_samples: 500}
optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
scheduler: constant
YAML
run_capture nchw.txt "$RUNNER" cl.yaml output_path=nchw channels_last=false
expect_success nchw.txt "NCHW run"
run_capture nhwc.txt "$RUNNER" cl.yaml output_path=nhwc channels_last=true
expect_success nhwc.txt "channels_last run failed"
expect_contains "$(cat nhwc.txt)" "memory layout channels_last" "channels_last is logged"
compare_runs nchw/cl/*/ nhwc/cl/*/ 1e-3 0.01 10 || fail "channels_last vs NCHW"

# ---- the fused BatchNorm+ReLU kernel (channels_last on the CPU, the default) against
# LibTorch's batch_norm, add_ and relu_: the same losses; the trace shows which ran.
expect_contains "$(cat nhwc.txt)" "memory layout channels_last, fused BatchNorm+ReLU" "the fused kernel is logged"
for f in true false; do
  run_capture "fused_$f.txt" "$RUNNER" cl.yaml output_path=fused_$f fused_kernels=$f "profile={wait: 2, active: 2}"
  expect_success "fused_$f.txt" "fused_kernels=$f run failed"
done
# 2e-3: the two part like NCHW and channels_last above (summation order, amplified by
# training: 1e-5 after one step, 4e-4 to 7e-4 by iteration 8 for both pairs)
compare_runs fused_false/cl/*/ fused_true/cl/*/ 2e-3 0.01 10 || fail "fused BatchNorm+ReLU vs LibTorch's"
"$PYTHON" - fused_true/cl/*/profile/trace_rank0.json fused_false/cl/*/profile/trace_rank0.json <<'PY' ||
import json, sys
def names(f):
    return {e.get("name") for e in json.load(open(f))["traceEvents"]}
fused, plain = names(sys.argv[1]), names(sys.argv[2])
assert {"runner::batch_norm_relu", "runner::batch_norm_relu_backward"} <= fused, "no fused kernel in the trace"
assert not {"aten::threshold_backward", "aten::native_batch_norm_backward"} & fused, \
    "LibTorch's ReLU or BatchNorm backward still ran beside the fused kernel (the shortcuts' BatchNorm included)"
assert "runner::batch_norm_relu" not in plain and "aten::threshold_backward" in plain, "fused_kernels=false"
print("trace: fused kernel with fused_kernels=true, LibTorch's operators with false")
PY
  fail "fused kernel in the trace"

# ---- bf16 autocast vs float32: same schedule, accuracy within 1 point
common=(num_epochs=1 dataflow.max_train_samples=38400 'scheduler.milestones=[[0, 0.0], [30, 0.1], [1ep, 0.0]]'
        log_every_iters=50 threads=2)
run_capture fp32.txt "$RUNNER" "$SOURCE_DIR/configs/fashion_mnist_resnet8.yaml" output_path=fp32 "${common[@]}"
expect_success fp32.txt "float32 run"
run_capture bf16.txt "$RUNNER" "$SOURCE_DIR/configs/fashion_mnist_resnet8.yaml" output_path=bf16 "${common[@]}" amp=bf16
expect_success bf16.txt "bf16 run failed"
expect_contains "$(cat bf16.txt)" "step: amp bf16" "bf16 is logged"
grep -h "training:" fp32.txt bf16.txt
"$PYTHON" - fp32/*/*/metrics.jsonl bf16/*/*/metrics.jsonl <<'PY' || fail "bf16 accuracy"
import json, sys
acc = [[json.loads(l)["val/accuracy"] for l in open(f) if "val/accuracy" in l][-1] for f in sys.argv[1:]]
print(f"val/accuracy: float32 {acc[0]:.4f}, bf16 autocast {acc[1]:.4f}")
assert acc[0] > 0.80, "float32 run too weak to compare"
assert abs(acc[0] - acc[1]) <= 0.01, "bf16 accuracy differs from float32 by more than 1 point"
PY

# ---- fp16 needs CUDA
run_capture fp16.txt "$RUNNER" cl.yaml amp=fp16
[ "$RC" -eq 2 ] || fail "amp=fp16 on the CPU: exit $RC, expected 2"
expect_contains "$(cat fp16.txt)" "amp: fp16 autocast needs a CUDA device" "fp16 on the CPU"
finish
