#!/usr/bin/env bash
# The optimizer's extras on real training runs: optimizer.no_decay (parameter groups), the
# weight average (ema: evaluated as val_ema/*, exported, checkpointed), fused kernels, all
# through a crash and an exact resume, alone and under mpirun -np 2; and profile: (a Kineto
# trace that opens as JSON with the expected events, an operator table, GFLOP/s).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dist_lib.sh"
cd "$TMP"
cat > o.yaml <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_resnet8.yaml]
num_epochs: 2
deterministic: true
log_every_iters: 5
checkpoint_every: 15
dataflow: {batch_size: 64, max_train_samples: 1920, max_val_samples: 400, augment: true}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9, nesterov: true, weight_decay: 5e-4, no_decay: [bias, norm]}
ema: {decay: 0.9}
best: {metric: val_ema/accuracy, n_saved: 1}
YAML
hash_of() { grep -o "$2 [0-9a-f]\{16\}" "$1/run.log" | tail -1 | grep -o '[0-9a-f]\{16\}'; }

echo "== no_decay and ema on a real run"
run_capture out.txt "$RUNNER" o.yaml output_path=ref
expect_success out.txt "reference run"
ref=$(ls -d ref/o/*)
expect_contains "$(cat out.txt)" "optimizer.no_decay: 19 parameter tensors (682 values) without weight decay, 10 (77072) with" "banner"
expect_contains "$(cat out.txt)" "val_ema/accuracy" "val_ema metrics"
grep '^.*best: ' out.txt | grep -q 'val_ema/accuracy [0-9.]* (epoch' || fail "the final best: line has no val_ema/accuracy"
grep -q '<td>val_ema/accuracy</td>' "$ref/report.html" || fail "report.html's metrics table has no val_ema/accuracy row"
[ -s "$ref/ema_model.pt" ] || fail "no ema_model.pt"
ls "$ref"/best/best_epoch*_val_ema-accuracy=*.pt > /dev/null 2>&1 || fail "no best model by val_ema/accuracy"
grep -q '"val_ema/loss"' "$ref/metrics.jsonl" || fail "metrics.jsonl has no val_ema/loss"
# The exported average is the weights that gave val_ema: not the final weights.
[ -n "$(hash_of "$ref" "(hash")" ] && [ "$(hash_of "$ref" "(hash")" != "$(hash_of "$ref" "final weights hash")" ] ||
  fail "ema_model.pt's hash should differ from the final weights'"
"$PYTHON" - "$ref/ema_model.pt" <<'PY' || fail "ema_model.pt does not load in PyTorch"
import sys, torch
m = torch.jit.load(sys.argv[1])
names = [n for n, _ in m.named_parameters()] + [n for n, _ in m.named_buffers()]
assert any("running_mean" in n for n in names) and len(names) > 10, names
print("ema_model.pt loads in PyTorch:", len(names), "tensors")
PY

echo "== with decay ~0 the average is the weights: val_ema equals val"
run_capture zero.txt "$RUNNER" o.yaml output_path=zero ema.decay=1e-12 num_epochs=1 -q
expect_success zero.txt "decay 1e-12"
"$PYTHON" - "$(ls -d zero/o/*)/metrics.jsonl" <<'PY' || fail "val_ema != val with decay ~0"
import json, sys
row = [json.loads(l) for l in open(sys.argv[1]) if "val/accuracy" in l][-1]
for k in ("accuracy", "top5", "loss"):
    assert abs(row["val/" + k] - row["val_ema/" + k]) < 1e-9, (k, row)
print("val == val_ema:", row["val/accuracy"], row["val_ema/accuracy"])
PY

echo "== no_decay changes what is trained (and is part of the config a resume checks)"
run_capture nd.txt "$RUNNER" o.yaml output_path=nd optimizer.no_decay=null -q
[ "$(hash_of "$(ls -d nd/o/*)" "final weights hash")" != "$(hash_of "$ref" "final weights hash")" ] ||
  fail "no_decay made no difference to the weights"

echo "== crash + resume: the same run, average and best model included"
for k in 22 31; do  # mid-epoch after a checkpoint; right after the epoch-1 validation
  run_capture "c$k.txt" "$RUNNER" o.yaml output_path="c$k" crash_iteration=$k -q
  [ "$RC" -eq 1 ] || fail "crash at $k: exit $RC"
  run_capture "r$k.txt" "$RUNNER" o.yaml output_path="c$k" resume_from=auto
  expect_success "r$k.txt" "resume after a crash at $k"
  run=$(ls -d c$k/o/*)
  cmp -s "$ref/metrics.jsonl" "$run/metrics.jsonl" || fail "crash at $k: metrics.jsonl differs"
  cmp -s "$ref/ema_model.pt" "$run/ema_model.pt" || fail "crash at $k: ema_model.pt differs"
  [ "$(hash_of "$run" "final weights hash")" = "$(hash_of "$ref" "final weights hash")" ] || fail "crash at $k: weights"
done
run_capture fused.txt "$RUNNER" o.yaml output_path=f optimizer.fused=true crash_iteration=22 -q
run_capture fusedr.txt "$RUNNER" o.yaml output_path=f optimizer.fused=true resume_from=auto -q
expect_success fusedr.txt "fused: resume"
run_capture fusedref.txt "$RUNNER" o.yaml output_path=fref optimizer.fused=true -q
cmp -s "$(ls -d f/o/*)/metrics.jsonl" "$(ls -d fref/o/*)/metrics.jsonl" || fail "fused + no_decay + ema: resume differs"
run_capture changed.txt "$RUNNER" o.yaml output_path=c22 resume_from=auto ema.decay=0.5 -q
[ "$RC" -eq 2 ] || fail "resume with another ema.decay: exit $RC, expected 2"
expect_contains "$(cat changed.txt)" "ema.decay (0.9 -> 0.5)" "resume refuses a changed ema"

echo "== two ranks: the same average on both, exact resume"
"${MPIRUN[@]}" -np 2 "$RUNNER" o.yaml output_path=m2 -q > m2.txt 2>&1 || { tail m2.txt; fail "2-rank run"; }
"${MPIRUN[@]}" -np 2 "$RUNNER" o.yaml output_path=m2c crash_iteration=22 -q > /dev/null 2>&1 && fail "2-rank crash"
"${MPIRUN[@]}" -np 2 "$RUNNER" o.yaml output_path=m2c resume_from=auto -q > m2c.txt 2>&1 || { tail m2c.txt; fail "2-rank resume"; }
cmp -s "$(ls -d m2/o/*)/metrics.jsonl" "$(ls -d m2c/o/*)/metrics.jsonl" || fail "2 ranks: resume differs"
cmp -s "$(ls -d m2/o/*)/ema_model.pt" "$(ls -d m2c/o/*)/ema_model.pt" || fail "2 ranks: ema_model.pt differs"

echo "== bad input: one line, exit 2"
expect_one_line_errors o.yaml "optimizer.no_decay=[biass]|optimizer.no_decay[0]: 'biass' selects no trainable parameter of model 'resnet8'; did you mean 'bias'?" \
  "optimizer.no_decay=bias|optimizer.no_decay: expected a list of parameter kinds (bias, norm, 1d)" \
  "ema=maybe|ema: expected true, false or a map (decay), found 'maybe'" \
  "ema.decay=1.5|ema.decay" \
  "profile.wiat=3|profile.wiat: unknown key for profile; did you mean 'wait'?"

echo "== profile: a Chrome trace of chosen iterations, an operator table, GFLOP/s"
run_capture prof.txt "$RUNNER" o.yaml output_path=prof 'profile={wait: 3, active: 4}' num_epochs=1 ema=false best=null
expect_success prof.txt "profiled run"
expect_contains "$(cat prof.txt)" "profile: iterations 4..7 traced to" "profile line"
! grep -q "gpuGetDeviceCount\|CUPTI" prof.txt || fail "the profiler printed CUDA noise on a CPU run"
prun=$(ls -d prof/o/*)
"$PYTHON" - "$prun" <<'PY' || fail "the trace or the figures"
import json, sys
run = sys.argv[1]
trace = json.load(open(run + "/profile/trace_rank0.json"))
ev = [e for e in trace["traceEvents"] if e.get("ph") == "X"]
names = {e["name"] for e in ev}
steps = sorted(n for n in names if n.startswith("ProfilerStep#"))
assert steps == ["ProfilerStep#4", "ProfilerStep#5", "ProfilerStep#6", "ProfilerStep#7"], steps
for part in ("forward", "backward", "optimizer", "aten::conv2d", "aten::convolution_backward", "aten::addmm"):
    assert part in names, part
conv = [e for e in ev if e["name"] == "aten::conv2d"]
assert all(e["args"].get("Input Dims") for e in conv), "no input shapes"
summary = dict(l.split(": ", 1) for l in open(run + "/summary.yaml") if ": " in l)
gflop, gflops = float(summary["profile_gflop_per_iteration"]), float(summary["achieved_gflops"])
assert float(summary["profile_gflops_traced"]) > 1
# resnet8 on 1x28x28, per-rank batch 64: 3 x the forward convolutions' 1.196 GFLOP
assert 3.4 < gflop < 3.8, gflop
assert gflops > 1, gflops
# The peak is the higher of the measured matmul and 3x3-convolution rates; resnet8's training
# loop stays below it (MFU under 1: on this AMD CPU MKL's float32 GEMM alone reached 216
# GFLOP/s, under what resnet8's oneDNN convolutions do, until the convolution was measured too).
peak = max(float(summary["matmul_peak_gflops"]), float(summary["conv_peak_gflops"]))
mfu = float(summary["mfu"])
assert peak > 1 and abs(mfu - gflops / peak) < 2e-3 and 0 < mfu < 1, (peak, mfu, gflops)
table = open(run + "/profile/ops_rank0.txt").read()
assert "aten::convolution_backward" in table, table[:500]
print("trace: %d events, %s; %.3f GFLOP/iteration, %.1f GFLOP/s, MFU %.2f of %.1f" % (len(ev), steps, gflop, gflops, mfu, peak))
PY
finish
