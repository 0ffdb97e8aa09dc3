#!/usr/bin/env bash
# Weights PyTorch users load: the run's model.safetensors (and each best model's
# .safetensors) carries torchvision's state-dict names, so torchvision's resnet18 loads it with
# load_state_dict(strict=True); `runner predict` writes the same outputs as that PyTorch model
# (within 1e-5); a .safetensors file with a missing or misshapen tensor is refused by name;
# model.pretrained starts runner's resnet50 from torchvision's resnet50 weights (same logits).
source "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > w.yaml <<YAML
num_epochs: 2
deterministic: true
dataflow: {name: synthetic, shape: [3, 32, 32], num_classes: 10, train_size: 64, val_size: 32, batch_size: 16}
model: resnet18
optimizer: {name: sgd, lr: 0.01, momentum: 0.9}
criterion: cross_entropy
scheduler: constant
best: {metric: val/loss, mode: min, n_saved: 1}
YAML
run_capture train.txt "$RUNNER" w.yaml output_path=w
expect_success train.txt "resnet18 run"
run=$(ls -d w/w/*)
expect_contains "$(cat train.txt)" "weights: $run/model.safetensors" "the final weights line"
[ -s "$run/model.safetensors" ] || fail "no model.safetensors"
best_st=$(ls "$run"/best/*.safetensors 2>/dev/null | head -1)
[ -n "$best_st" ] && [ -s "${best_st%.safetensors}.pt" ] || fail "the best model has no .safetensors beside its .pt"
[ "$(ls "$run"/best/*.safetensors | wc -l)" -eq 1 ] || fail "best: n_saved 1 should keep one .safetensors"

"$PYTHON" - "$run/model.safetensors" "$best_st" <<'PY' || fail "torchvision cannot load the weights"
import sys, numpy as np, torch, torchvision
from safetensors.torch import load_file, save_file
torch.manual_seed(0)
x = torch.randn(5, 3, 32, 32)
np.save("x.npy", x.numpy())
for path, out in ((sys.argv[1], "ref_final.npy"), (sys.argv[2], "ref_best.npy")):
    m = torchvision.models.resnet18(num_classes=10)
    state = load_file(path)
    m.load_state_dict(state, strict=True)  # every name and shape, nothing left over
    m.eval()
    with torch.no_grad():
        np.save(out, m(x).numpy())
state = load_file(sys.argv[1])
del state["fc.bias"]
save_file(state, "missing.safetensors")
state = load_file(sys.argv[1])
state["fc.weight"] = torch.zeros(3, 512)
save_file(state, "misshapen.safetensors")
print("torchvision resnet18 loads model.safetensors and", sys.argv[2].split("/")[-1], f"({len(state)} tensors)")
PY

run_capture p1.txt "$RUNNER" predict "$run" --input x.npy --output final.npy --checkpoint "$run/model.safetensors"
expect_success p1.txt "predict from model.safetensors"
expect_contains "$(cat p1.txt)" "predict: 5 samples through $run/model.safetensors -> final.npy [5, 10]" "predict line"
run_capture p2.txt "$RUNNER" predict "$run" --input x.npy --output best.npy
expect_success p2.txt "predict from the best model (default)"
run_capture p3.txt "$RUNNER" predict "$run" --input x.npy --output last.npy --checkpoint last
expect_success p3.txt "predict from the last checkpoint"
"$PYTHON" - <<'PY' || fail "runner predict differs from PyTorch"
import numpy as np
for ours, ref in (("final.npy", "ref_final.npy"), ("best.npy", "ref_best.npy"), ("last.npy", "ref_final.npy")):
    a, b = np.load(ours), np.load(ref)
    assert a.dtype == np.float32 and a.shape == b.shape == (5, 10), (a.dtype, a.shape, b.shape)
    err = float(np.abs(a - b).max())
    print(f"{ours} vs {ref}: max |difference| {err:.2e}")
    assert err <= 1e-5, err
PY

echo "== runner eval: the saved weights give the logged metrics again"
run_capture ev.txt "$RUNNER" eval "$run"
expect_success ev.txt "eval of the best model"
run_capture evl.txt "$RUNNER" eval "$run" --checkpoint last --split train
expect_success evl.txt "eval of the last checkpoint on the training set"
expect_contains "$(cat evl.txt)" "train/accuracy " "eval --split train"
"$PYTHON" - "$run/metrics.jsonl" ev.txt <<'PY' || fail "eval differs from the run's own validation"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if "val/loss" in l]
best = min(rows, key=lambda r: r["val/loss"])  # best: val/loss, mode min
got = dict(l.split() for l in open(sys.argv[2]) if l.startswith("val/"))
for k in ("val/accuracy", "val/loss"):
    assert abs(float(got[k]) - best[k]) < 1e-6, (k, got[k], best[k])
print("eval of the best model:", got, "= epoch", best["epoch"])
PY
check_error() {  # what expected command...
  local what=$1 want=$2; shift 2
  run_capture bad.txt "$@"
  [ "$RC" -eq 2 ] || fail "$what: exit $RC, expected 2: $(cat bad.txt)"
  expect_contains "$(cat bad.txt)" "$want" "$what"
  [ "$(wc -l < bad.txt)" -eq 1 ] || fail "$what: more than one line: $(cat bad.txt)"
}
check_error "eval split" "eval: --split: 'test' is not val or train" "$RUNNER" eval "$run" --split test

echo "== eval and predict --device; a GPU run's folder on a machine without a GPU"
run_capture evc.txt "$RUNNER" eval "$run" --device cpu
expect_success evc.txt "eval --device cpu"
[ "$(grep '^val/' evc.txt)" = "$(grep '^val/' ev.txt)" ] || fail "eval --device cpu differs: $(cat evc.txt) / $(cat ev.txt)"
expect_contains "$(cat evc.txt)" "samples) on cpu" "eval's weights line names the device"
run_capture pc.txt "$RUNNER" predict "$run" --input x.npy --output best_cpu.npy --device cpu
expect_success pc.txt "predict --device cpu"
cmp -s best.npy best_cpu.npy || fail "predict --device cpu differs from the default"
check_error "eval device" "eval: --device: 'gpu' is not auto, cpu or cuda; did you mean 'cuda'?" \
  "$RUNNER" eval "$run" --device gpu
if [[ $("$RUNNER" version) != *"available: yes"* ]]; then  # no usable GPU (or a CPU-only build)
  check_error "eval --device cuda, no GPU" "eval: --device cuda: no CUDA device is usable here (" \
    "$RUNNER" eval "$run" --device cuda
  # A run trained on a GPU names device: cuda in its folder; here it is evaluated on the CPU.
  cp -r "$run" gpu_run && sed -i 's/^device: .*/device: cuda/' gpu_run/config.yaml
  grep -q '^device: cuda$' gpu_run/config.yaml || fail "the copied run folder has no device: line"
  run_capture evg.txt "$RUNNER" eval gpu_run
  expect_success evg.txt "eval of a device: cuda run folder without a GPU"
  expect_contains "$(cat evg.txt)" "eval: the run used device: cuda but no CUDA device is usable here (" "the note"
  expect_contains "$(cat evg.txt)" "; running on the CPU" "the note's end"
  [ "$(grep '^val/' evg.txt)" = "$(grep '^val/' ev.txt)" ] || fail "eval of the GPU run folder differs on the CPU"
  cp -r gpu_run fp16_run && sed -i 's/^amp: .*/amp: fp16/' fp16_run/config.yaml
  check_error "an fp16 GPU run, no GPU" "eval: the run used amp: fp16, which needs a CUDA device, and no CUDA device is usable here (" \
    "$RUNNER" eval fp16_run
fi
echo "== channels_last runs: eval and predict in its layout (the one-pass BatchNorm+ReLU), as PyTorch"
for fused in true false; do
  rm -rf cl_$fused && cp -r "$run" cl_$fused
  sed -i "s/^channels_last: .*/channels_last: true/; s/^fused_kernels: .*/fused_kernels: $fused/" cl_$fused/config.yaml
  grep -q '^channels_last: true$' cl_$fused/config.yaml && grep -q "^fused_kernels: $fused$" cl_$fused/config.yaml ||
    fail "the copied run folder has no channels_last: or fused_kernels: line"
  run_capture pcl.txt "$RUNNER" predict cl_$fused --input x.npy --output cl_$fused.npy
  expect_success pcl.txt "predict, channels_last, fused_kernels $fused"
  run_capture evcl_$fused.txt "$RUNNER" eval cl_$fused
  expect_success evcl_$fused.txt "eval, channels_last, fused_kernels $fused"
done
"$PYTHON" - ev.txt evcl_true.txt evcl_false.txt <<'PY' || fail "channels_last eval/predict differ from PyTorch's NCHW"
import sys, numpy as np
ref = np.load("ref_best.npy")
for f in ("cl_true.npy", "cl_false.npy"):
    err = float(np.abs(np.load(f) - ref).max())
    print(f"{f} vs torchvision: max |difference| {err:.2e}")
    assert err <= 1e-5, (f, err)
base = dict(l.split() for l in open(sys.argv[1]) if l.startswith("val/"))
for path in sys.argv[2:]:
    got = dict(l.split() for l in open(path) if l.startswith("val/"))
    assert got["val/accuracy"] == base["val/accuracy"], (path, got, base)
    assert abs(float(got["val/loss"]) - float(base["val/loss"])) <= 1e-5 * abs(float(base["val/loss"])), (path, got, base)
    print(path, got)
PY
check_error "--device for a run" "--device is for eval, predict and sample; a run takes its device from the config: device=cpu" \
  "$RUNNER" w.yaml --device cpu

echo "== bad input: one line, exit 2"
check_error "missing tensor" "predict: missing.safetensors: has no tensor 'fc.bias' (the model's is [10])" \
  "$RUNNER" predict "$run" --input x.npy --output y.npy --checkpoint missing.safetensors
check_error "misshapen tensor" "predict: misshapen.safetensors: 'fc.weight' is [3, 512], the model's is [10, 512]" \
  "$RUNNER" predict "$run" --input x.npy --output y.npy --checkpoint misshapen.safetensors
"$PYTHON" -c "import numpy as np; np.save('wrong.npy', np.zeros((2, 3, 28, 28), np.float32))"
check_error "input shape" "predict: --input: wrong.npy has shape [2, 3, 28, 28]; the model takes [N, 3, 32, 32]" \
  "$RUNNER" predict "$run" --input wrong.npy --output y.npy
check_error "no output" "usage: runner predict RUN_DIR --input X.npy --output Y.npy" "$RUNNER" predict "$run" --input x.npy
check_error "not a run" "predict: . is not a run folder (no config.yaml)" "$RUNNER" predict . --input x.npy --output y.npy
# A checkpoint and a best model of a 5-class run, given to the 10-class run: named, one line each.
"$RUNNER" w.yaml output_path=w5 dataflow.num_classes=5 num_epochs=1 -q > w5.txt 2>&1 || { cat w5.txt; fail "5-class run"; }
ck5=$(ls w5/w/*/checkpoints/*.ckpt | tail -1)
best5=$(ls w5/w/*/best/*.pt | head -1)
check_error "a checkpoint of another shape" "eval: $ck5: 'fc.weight' is [5, 512], the model's is [10, 512]" \
  "$RUNNER" eval "$run" --checkpoint "$ck5"
check_error "a best model of another shape" "predict: $best5: 'fc.weight' is [5, 512], the model's is [10, 512]" \
  "$RUNNER" predict "$run" --input x.npy --output y.npy --checkpoint "$best5"
[ ! -e y.npy ] || fail "a refused predict wrote its output"

echo "== model.pretrained: a torchvision resnet50 saved from Python starts runner's resnet50"
"$PYTHON" - <<'PY'
import numpy as np, torch, torchvision
from safetensors.torch import save_file
torch.manual_seed(1)
m = torchvision.models.resnet50()
for mod in m.modules():  # statistics that matter in eval mode
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.normal_(0, 0.1)
        mod.running_var.uniform_(0.5, 2.0)
state = {k: v.contiguous() for k, v in m.state_dict().items()}
save_file(state, "r50.safetensors")
m.eval()
x = torch.randn(2, 3, 64, 64)
np.save("x50.npy", x.numpy())
with torch.no_grad():
    np.save("ref50.npy", m(x).numpy())
small = torchvision.models.resnet50(num_classes=10)
save_file({k: v.contiguous() for k, v in small.state_dict().items()}, "r50_10.safetensors")
print("torchvision resnet50:", len(state), "tensors")
PY
cat > p.yaml <<YAML
num_epochs: 1
dataflow: {name: synthetic, shape: [3, 64, 64], num_classes: 1000, train_size: 4, val_size: 2, batch_size: 2}
model: {name: resnet50, pretrained: r50.safetensors}
optimizer: {name: sgd, lr: 0.0, momentum: 0.0, weight_decay: 0.0}
criterion: cross_entropy
scheduler: constant
YAML
run_capture pre.txt "$RUNNER" p.yaml output_path=pre
expect_success pre.txt "a run from pretrained weights"
expect_contains "$(cat pre.txt)" "model: resnet50, 25557032 parameters, weights from r50.safetensors" "pretrained banner"
prun=$(ls -d pre/p/*)
run_capture p50.txt "$RUNNER" predict "$prun" --input x50.npy --output y50.npy --checkpoint r50.safetensors
expect_success p50.txt "predict with torchvision's resnet50 weights"
"$PYTHON" - "$prun/model.safetensors" <<'PY' || fail "runner's resnet50 does not match torchvision's"
import sys, numpy as np
from safetensors.numpy import load_file
ours, ref = np.load("y50.npy"), np.load("ref50.npy")
err = float(np.abs(ours - ref).max()) / max(1.0, float(np.abs(ref).max()))
print(f"resnet50 logits [2, 1000]: max |difference| {err:.2e} of the largest")
assert ours.shape == ref.shape == (2, 1000) and err <= 1e-5, (ours.shape, err)
# lr 0: the run kept the pretrained parameters exactly (BatchNorm statistics moved in training)
start, end = load_file("r50.safetensors"), load_file(sys.argv[1])
same = [k for k in start if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
assert len(same) == 161 and all(np.array_equal(start[k], end[k]) for k in same), len(same)
PY
expect_one_line_errors p.yaml \
  "model.pretrained=r50_10.safetensors|model.pretrained: r50_10.safetensors: 'fc.weight' is [10, 2048], the model's is [1000, 2048]" \
  "model.pretrained=nope.safetensors|model.pretrained: nope.safetensors: cannot be opened" \
  "model.pretrained=w.pth|model.pretrained: 'w.pth' is not a .safetensors file (convert a .pth: python -c"
finish
