#!/usr/bin/env bash
# Tasks beyond image classification, on real data: a character-level GPT on the fortunes
# package's text (the loss falls below the text's own unigram baseline, the tied embedding
# is one parameter, mpirun -np 2 equals one process over 100 iterations, a crash + resume
# is byte-identical, `runner sample` writes text), a U-Net that learns to segment generated
# shapes (val/mean_iou rises), the tensors dataflow on arrays written by numpy and the real
# safetensors package (.npy and .safetensors give the same run), and the bad inputs.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dist_lib.sh"
cd "$TMP"
FORTUNES=/usr/share/games/fortunes
[ -f "$FORTUNES/cookie" ] || { echo "FAIL: $FORTUNES/cookie missing: tools/setup.sh installs the fortunes package" >&2; exit 1; }

# 2 epochs of 50 iterations: a 2-layer, 64-wide GPT on blocks of 32 characters.
cat > t.yaml <<YAML
_base_: [$SOURCE_DIR/configs/text_gpt.yaml]
num_epochs: 2
deterministic: true
log_every_iters: 1
checkpoint_every: 30
dataflow: {block_size: 32, batch_size: 16, train_samples: 800, val_blocks: 64}
model: {layers: 2, heads: 2, width: 64}
scheduler: {warmup: 10}
YAML

echo "== a GPT learns the text"
run_capture ref.txt "$RUNNER" t.yaml output_path=ref
expect_success ref.txt "GPT run"
ref=$(ls -d ref/t/*)
expect_contains "$(cat ref.txt)" "text: 43 files, 2318962 training and 257665 validation characters, 104-character vocabulary" "data line"
# The output layer shares the token embedding: 10 matrices decay (not 11), 18 vectors do not.
expect_contains "$(cat ref.txt)" "optimizer.no_decay: 18 parameter tensors" "no_decay banner"
expect_contains "$(cat ref.txt)" "without weight decay, 10 (" "the tied weight is one parameter for the optimizer"
grep -q "lm_head (TiedHead)" "$ref/model_summary.txt" || fail "model summary has no lm_head row"
grep -q "^Output: \[-1, 104, 32\]" "$ref/model_summary.txt" || fail "model summary output shape: $(grep Output "$ref/model_summary.txt")"
[ -s "$ref/vocab.yaml" ] || fail "no vocab.yaml in the run folder"
"$PYTHON" - "$ref" <<'PY' || fail "the tied weight is saved twice"
import glob, re, sys, zipfile
run = sys.argv[1]
params = int(re.search(r"Total params: ([0-9,]+)", open(run + "/model_summary.txt").read()).group(1).replace(",", ""))
best = sorted(glob.glob(run + "/best/*.pt"))[-1]
data = sum(i.file_size for i in zipfile.ZipFile(best).infolist() if "/data/" in i.filename)
print(f"best model: {data} bytes of tensor data for {params} parameters")
assert data == 4 * params, (data, params)
PY
"$PYTHON" - "$ref" <<'PY' || fail "the GPT did not learn"
import json, re, sys
run = sys.argv[1]
rows = [json.loads(l) for l in open(run + "/metrics.jsonl")]
loss = [r["train/batch_loss"] for r in rows if "train/batch_loss" in r]
val = [r for r in rows if "val/bits_per_char" in r]
vocab = open(run + "/vocab.yaml").read()
uni = float(re.search(r"val_unigram_bits_per_char: ([0-9.]+)", vocab).group(1))
bi = float(re.search(r"val_bigram_bits_per_char: ([0-9.]+)", vocab).group(1))
first, last = sum(loss[:10]) / 10, sum(loss[-10:]) / 10
bpc = val[-1]["val/bits_per_char"]
print(f"{len(loss)} iterations: loss {first:.3f} -> {last:.3f}; val bits/char {bpc:.3f} "
      f"(unigram {uni:.3f}, bigram {bi:.3f})")
assert len(loss) == 100, len(loss)
assert last < first - 1.0, (first, last)
assert bpc < uni, (bpc, uni)
assert 3.0 < bi < uni, (bi, uni)
# bits per char is the val loss (nats) in bits, with no label smoothing
assert abs(bpc - val[-1]["val/loss"] / 0.6931471805599453) < 1e-3, val[-1]
PY

echo "== runner sample: text from the best and the last weights, seeded"
run_capture s1.txt "$RUNNER" sample "$ref" --prompt "The cat" --tokens 40 --seed 3
expect_success s1.txt "sample"
run_capture s2.txt "$RUNNER" sample "$ref" --prompt "The cat" --tokens 40 --seed 3
cmp -s s1.txt s2.txt || fail "the same seed sampled different text"
expect_contains "$(cat s1.txt)" "sample: weights $ref/best/best_epoch" "best weights by default"
"$PYTHON" - s1.txt <<'PY' || fail "sampled text"
import sys
text = [l for l in open(sys.argv[1], encoding="utf-8") if not l.startswith("sample: weights")]
text = "".join(text)
assert text.startswith("The cat"), text
assert len(text.rstrip("\n")) >= len("The cat") + 30, repr(text)  # 40 characters, some may be newlines
PY
run_capture s3.txt "$RUNNER" sample "$ref" --prompt "A" --tokens 20 --checkpoint last --temperature 0
expect_success s3.txt "sample from the last checkpoint, greedy"
expect_contains "$(cat s3.txt)" "checkpoint_00000100.ckpt" "last checkpoint"

echo "== two ranks equal one process over 100 iterations"
"${MPIRUN[@]}" -np 2 "$RUNNER" t.yaml output_path=m2 -q > m2.txt 2>&1 || { tail m2.txt; fail "2-rank GPT run"; }
compare_runs "$ref" "$(ls -d m2/t/*)" 1e-4 0.002 100 || fail "1 vs 2 ranks"

echo "== crash + resume: byte-identical"
run_capture c.txt "$RUNNER" t.yaml output_path=c crash_iteration=45 -q
[ "$RC" -eq 1 ] || fail "crash: exit $RC"
run_capture r.txt "$RUNNER" t.yaml output_path=c resume_from=auto
expect_success r.txt "resume"
cmp -s "$ref/metrics.jsonl" "$(ls -d c/t/*)/metrics.jsonl" || fail "resumed metrics.jsonl differs"
[ -n "$(final_hash "$ref")" ] && [ "$(final_hash "$(ls -d c/t/*)")" = "$(final_hash "$ref")" ] || fail "resumed weights differ"

echo "== bad input: one line, exit 2"
expect_one_line_errors t.yaml "dataflow.files=/nonexistent/*.txt|dataflow.files: '/nonexistent/*.txt' matches no file" \
  "dataflow.block_size=1|dataflow.block_size: must be >= 2" \
  "model=resnet8|resnet8 needs image input [C, H, W], the dataflow gives 1 dimensions" \
  "model.heads=3|model.heads: width 64 does not divide into 3 heads" \
  "dataflow.exclude=['*']|dataflow.files: names no regular file once \`exclude\` is applied"
printf 'not utf-8: \xff\xfe\n' > bad.txt.in
run_capture bad.txt "$RUNNER" t.yaml output_path=bad "dataflow.files=$TMP/bad.txt.in" dataflow.exclude=[]
expect_contains "$(cat bad.txt)" "bad.txt.in: not UTF-8 text (bad byte at offset 11)" "not UTF-8"
run_capture bad.txt "$RUNNER" sample "$TMP"
[ "$RC" -eq 2 ] || fail "sample of a non-run: exit $RC"
expect_contains "$(cat bad.txt)" "is not a run folder (no config.yaml)" "sample of a non-run"
mkdir -p fake && cp "$ref/config.yaml" fake/
run_capture bad.txt "$RUNNER" sample fake
expect_contains "$(cat bad.txt)" "has no vocab.yaml" "sample without a vocabulary"
run_capture bad.txt "$RUNNER" sample "$ref" --checkpoint nope.pt
expect_contains "$(cat bad.txt)" "--checkpoint: 'nope.pt' is not best, last or a file" "sample --checkpoint"

echo "== segmentation: a U-Net learns to label every pixel"
run_capture seg.txt "$RUNNER" "$SOURCE_DIR/configs/shapes_unet.yaml" output_path=seg num_epochs=3 \
  dataflow.train_size=768 dataflow.val_size=128 deterministic=true
expect_success seg.txt "segmentation run"
seg=$(ls -d seg/shapes_unet/*)
grep -q "^Output: \[-1, 4, 64, 64\]" "$seg/model_summary.txt" || fail "unet output shape"
"$PYTHON" - "$seg" <<'PY' || fail "the U-Net did not learn"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if "val/mean_iou" in l]
iou = [r["val/mean_iou"] for r in rows]
acc = [r["val/accuracy"] for r in rows]
print("val/mean_iou by epoch:", ["%.3f" % v for v in iou], "pixel accuracy:", ["%.3f" % v for v in acc])
# All background scores about 0.17 (its IoU ~0.7, three classes at 0, over 4).
assert len(iou) == 3 and iou[-1] > iou[0] + 0.08 and iou[-1] > 0.25, iou
assert acc[-1] > 0.8, acc
PY
expect_one_line_errors "$SOURCE_DIR/configs/shapes_unet.yaml" \
  "dataflow.ignore_index=2|dataflow.ignore_index: is a class (0..3); use a negative value or >= 4" \
  "dataflow.image_size=20|model.depth: 3 stages need a height and width divisible by 8, the input is 20x20"
echo "== tensors: Fashion-MNIST as arrays from numpy and safetensors, no C++"
"$PYTHON" - <<'PY'
import gzip, numpy as np
from safetensors.numpy import save_file
def idx(name):
    raw = gzip.open("/usr/share/datasets/fashion-mnist/" + name, "rb").read()
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)
for split, images, labels, n in (("train", "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", 2048),
                                 ("val", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", 512)):
    x = (idx(images)[:n].astype(np.float32) / 255 - 0.286) / 0.353
    y = idx(labels)[:n].astype(np.int32)   # int32: the dataflow makes class indices int64
    np.save(f"x_{split}.npy", x.reshape(n, 1, 28, 28))
    np.save(f"y_{split}.npy", y)
    save_file({"input": x.reshape(n, 1, 28, 28), "target": y}, f"{split}.safetensors")
    np.save(f"x64_{split}.npy", x.astype(np.float64).reshape(n, 1, 28, 28))
np.save("fortran.npy", np.asfortranarray(np.zeros((4, 3), np.float32)))
np.save("y_short.npy", np.zeros(7, np.int64))
PY
cat > arr.yaml <<YAML
num_epochs: 2
deterministic: true
log_every_iters: 4
dataflow: {name: tensors, train: train.safetensors, val: val.safetensors, batch_size: 64}
model: mlp
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
criterion: cross_entropy
scheduler: constant
YAML
run_capture st.txt "$RUNNER" arr.yaml output_path=st
expect_success st.txt "tensors from .safetensors"
expect_contains "$(cat st.txt)" "tensors: train 2048 samples, val 512 (input Float 1x28x28, target Long)" "data line"
run_capture npy.txt "$RUNNER" arr.yaml output_path=npy \
  'dataflow.train={input: x_train.npy, target: y_train.npy}' 'dataflow.val={input: x_val.npy, target: y_val.npy}'
expect_success npy.txt "tensors from .npy"
cmp -s "$(ls -d st/arr/*)/metrics.jsonl" "$(ls -d npy/arr/*)/metrics.jsonl" || fail ".npy and .safetensors runs differ"
"$PYTHON" - "$(ls -d st/arr/*)/metrics.jsonl" <<'PY' || fail "the mlp did not learn from arrays"
import json, sys
acc = [json.loads(l)["val/accuracy"] for l in open(sys.argv[1]) if "val/accuracy" in l]
print("val/accuracy from arrays:", acc)
assert acc[-1] > 0.7, acc
PY
run_capture f64.txt "$RUNNER" arr.yaml output_path=f64 num_epochs=1 \
  'dataflow.train={input: x64_train.npy, target: y_train.npy}' 'dataflow.val={input: x64_val.npy, target: y_val.npy}'
expect_success f64.txt "float64 arrays are made float32"
expect_one_line_errors arr.yaml \
  "dataflow.train=x_train.npy|dataflow.train: a .npy file holds one array: name the fields" \
  "dataflow.train={input: fortran.npy, target: y_train.npy}|dataflow.train.input: fortran.npy: Fortran-ordered arrays are not supported" \
  "dataflow.train={input: x_train.npy, target: y_short.npy}|dataflow.train: field 'target' has 7 samples, 'input' 2048" \
  "dataflow.train=arr.yaml|dataflow.train: 'arr.yaml': expected a .npy or .safetensors file" \
  "dataflow.val={input: x_val.npy}|dataflow.val: has no field 'target', which train has"
finish
