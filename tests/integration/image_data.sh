#!/usr/bin/env bash
# CIFAR-10/100 binary files and a JPEG/PNG image folder, generated here in the real
# on-disk formats (tools/data/make_data.cpp), read by real training runs: readers,
# validation errors, unreadable images skipped (or fatal), train_eval, and every shipped
# config running a few iterations on generated data.
source "$(dirname "$0")/lib.sh"
: "${BUILD_DIR:?set by ctest}"
MAKE_DATA="$BUILD_DIR/bin/runner_make_data"
cd "$TMP"
common=(output_path=runs log_every_iters=1 threads=2)

# ---- CIFAR-10 / CIFAR-100 readers
"$MAKE_DATA" cifar10 c10 --train 250 --test 60
"$MAKE_DATA" cifar100 c100 --train 120 --test 40
cat > c10.yaml <<EOF
num_epochs: 2
dataflow: {name: cifar10, root: c10, batch_size: 50, train_eval_size: 40}
model: resnet20
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
scheduler: constant
EOF
run_capture c10.txt "$RUNNER" c10.yaml "${common[@]}"
expect_success c10.txt "cifar10 + resnet20 run failed"
expect_contains "$(cat c10.txt)" "cifar10 from c10/cifar-10-batches-bin (train: pad 4 constant + crop 32 + flip)" "cifar10 description"
expect_contains "$(cat c10.txt)" "train 250 samples, val 60 samples, 10 classes" "cifar10 sizes (5 batch files)"
expect_contains "$(cat c10.txt)" "model: resnet20, 269722 parameters" "resnet20 parameters"
"$PYTHON" - runs/c10/*/metrics.jsonl <<'PY' || fail "cifar10 metrics"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
val = [r for r in rows if "val/accuracy" in r]
assert len(val) == 2, val
for r in val:  # train_eval on 40 fixed training images, evaluated beside val
    assert "train_eval/accuracy" in r and "train_eval/loss" in r, r
losses = [r["train/batch_loss"] for r in rows if "train/batch_loss" in r]
assert len(losses) == 10, len(losses)
print("cifar10 losses", [round(x, 3) for x in losses])
assert sum(losses[-3:]) < sum(losses[:3]), "loss did not fall on class-coloured images"
PY
for mode in fine:100 coarse:20; do
  run_capture c100.txt "$RUNNER" c10.yaml "${common[@]}" num_epochs=1 \
    "dataflow={name: cifar100, root: c100/cifar-100-binary, batch_size: 40, label_mode: ${mode%%:*}}" model=resnet8
  expect_success c100.txt "cifar100 ${mode%%:*} run failed"
  expect_contains "$(cat c100.txt)" "train 120 samples, val 40 samples, ${mode##*:} classes" "cifar100 ${mode%%:*} labels"
done

# Broken CIFAR files: one-line errors naming the file.
cp -r c10 c10bad && head -c 5000 c10/cifar-10-batches-bin/data_batch_3.bin > c10bad/cifar-10-batches-bin/data_batch_3.bin
run_capture bad.txt "$RUNNER" c10.yaml "${common[@]}" dataflow.root=c10bad
[ "$RC" -eq 2 ] || fail "truncated CIFAR file: exit $RC, expected 2"
expect_contains "$(cat bad.txt)" "error: c10.yaml:2:11: dataflow: dataflow 'cifar10' (plugin $BUILD_DIR/lib/runner/plugins/librunner_dataflows.so) failed to build: c10bad/cifar-10-batches-bin/data_batch_3.bin: 5000 bytes is not a whole number of 3073-byte records" "truncated CIFAR file"
cp c10/cifar-10-batches-bin/data_batch_3.bin c10bad/cifar-10-batches-bin/data_batch_3.bin
printf '\x0c' | dd of=c10bad/cifar-10-batches-bin/test_batch.bin bs=1 seek=$((3073 * 7)) conv=notrunc status=none
run_capture bad.txt "$RUNNER" c10.yaml "${common[@]}" dataflow.root=c10bad
expect_contains "$(cat bad.txt)" "failed to build: c10bad/cifar-10-batches-bin/test_batch.bin: record 7 has label 12, outside [0, 10)" "CIFAR label range"
rm c10bad/cifar-10-batches-bin/data_batch_5.bin
run_capture bad.txt "$RUNNER" c10.yaml "${common[@]}" dataflow.root=c10bad
[ "$RC" -eq 2 ] || fail "missing CIFAR file: exit $RC, expected 2"
expect_contains "$(cat bad.txt)" "dataflow.root: no data_batch_5.bin in 'c10bad/cifar-10-batches-bin'" "missing CIFAR file"

# ---- image folder: JPEG + PNG, random sizes, unreadable files
"$MAKE_DATA" imagefolder imgs --classes 3 --train-per-class 10 --val-per-class 4 --corrupt 4
cat > imgs.yaml <<EOF
num_epochs: 2
dataflow: {name: imagefolder, root: imgs, image_size: 32, resize_size: 36, batch_size: 8, num_workers: 2,
           train_eval_size: 6}
model: {name: resnet18, stem: cifar}
optimizer: {name: sgd, lr: 0.02, momentum: 0.9}
scheduler: constant
EOF
run_capture img.txt "$RUNNER" imgs.yaml "${common[@]}"
expect_success img.txt "imagefolder run failed"
expect_contains "$(cat img.txt)" "imagefolder imgs (3 classes; train: random resized crop 32 + flip; val: resize 36 + center crop 32; JPEG DCT scaling)" "imagefolder description"
expect_contains "$(cat img.txt)" "train 34 samples, val 12 samples, 3 classes" "imagefolder counts (30 images + 4 unreadable)"
for f in zz_truncated_00.jpg zz_garbage_01.jpg zz_empty_02.png zz_cut_03.png; do
  expect_contains "$(cat img.txt)" "imgs/train/class_00/$f: " "unreadable $f reported with its path"
done
expect_contains "$(cat img.txt)" "data: 4 unreadable file(s) skipped" "skipped count in the summary"
[ "$(grep -c 'skipped unreadable sample' runs/imgs/*/run.log)" -eq 4 ] || fail "each unreadable image logged once"
grep -q '"train_eval/accuracy"' runs/imgs/*/metrics.jsonl || fail "imagefolder train_eval metrics"
run_capture img_fail.txt "$RUNNER" imgs.yaml "${common[@]}" dataflow.skip_bad_samples=false
[ "$RC" -eq 1 ] || fail "skip_bad_samples=false: exit $RC, expected 1"
expect_contains "$(tail -1 img_fail.txt)" "imgs/train/class_00/zz_" "skip_bad_samples=false names the file"
expect_contains "$(tail -1 img_fail.txt)" "dataflow.skip_bad_samples: true skips unreadable samples" "and the way out"
# More than 15 unreadable images in a row: the run gives up instead of skipping on.
"$MAKE_DATA" imagefolder junk --classes 2 --train-per-class 4 --val-per-class 1 --corrupt 20
run_capture junk.txt "$RUNNER" imgs.yaml "${common[@]}" dataflow.root=junk dataflow.train_eval_size=0
[ "$RC" -eq 1 ] || fail "20 unreadable images in a row: exit $RC, expected 1"
expect_contains "$(tail -1 junk.txt)" "(and the 15 samples before it were unreadable too: giving up)" "consecutive unreadable images"
# The full-size pipeline (224 crops of up to 320-pixel images) with the DCT scaling on and off.
for dct in true false; do
  run_capture img224.txt "$RUNNER" imgs.yaml "${common[@]}" num_epochs=1 dataflow.image_size=224 \
    dataflow.resize_size=256 dataflow.dct_scaling=$dct dataflow.batch_size=12 dataflow.train_eval_size=0 \
    model=resnet8 dataflow.max_val_samples=4
  expect_success img224.txt "224 imagefolder run (dct_scaling $dct) failed"
done

# Layout errors: no class folders, an empty class, a val class the train folder lacks.
mkdir -p e1/train e1/val
run_capture e.txt "$RUNNER" imgs.yaml "${common[@]}" dataflow.root=e1
expect_contains "$(cat e.txt)" "dataflow.root: 'e1/train' has no class folders (expected e1/train/<class>/<image>.jpg)" "no classes"
cp -r imgs e2 && mkdir e2/train/class_09 && touch e2/train/class_09/notes.txt
run_capture e.txt "$RUNNER" imgs.yaml "${common[@]}" dataflow.root=e2
[ "$RC" -eq 2 ] || fail "empty class: exit $RC, expected 2"
expect_contains "$(cat e.txt)" "dataflow.root: class folder 'e2/train/class_09' has no .jpg, .jpeg or .png file" "empty class"
rm -r e2/train/class_09 && mkdir e2/val/class_07 && cp imgs/val/class_00/img_00000.jpg e2/val/class_07/
run_capture e.txt "$RUNNER" imgs.yaml "${common[@]}" dataflow.root=e2
expect_contains "$(cat e.txt)" "'e2/val/class_07' is a class the train folder does not have" "val class not in train"
run_capture e.txt "$RUNNER" imgs.yaml "${common[@]}" dataflow.root=nowhere
expect_contains "$(cat e.txt)" "dataflow.root: folder 'nowhere' does not exist" "missing root"

# ---- every shipped config: validates, and runs a few iterations on generated data
for cfg in "$SOURCE_DIR"/configs/*.yaml; do
  name=$(basename "$cfg" .yaml)
  args=(num_epochs=1 "${common[@]}")
  case "$name" in
    cifar10_*) args+=(dataflow.root=c10 dataflow.batch_size=50 dataflow.max_train_samples=100 dataflow.max_val_samples=50
                      dataflow.train_eval_size=0 checkpoint_every=1) ;;
    baseline_resnet50)
      run_capture need.txt "$RUNNER" print-config "$cfg"
      [ "$RC" -eq 2 ] || fail "$name without dataflow.root: exit $RC, expected 2"
      expect_contains "$(cat need.txt)" "dataflow.root: required key is missing" "$name says root is needed"
      expect_contains "$(cat need.txt)" "see the README's Data section" "$name points at the README"
      args+=(dataflow.root=imgs dataflow.batch_size=4 dataflow.max_train_samples=8 dataflow.max_val_samples=4
             dataflow.num_workers=2 model.num_classes=1000) ;;
    synthetic_resnet50) args+=(dataflow.batch_size=4 dataflow.train_size=8 dataflow.val_size=4) ;;
    synthetic_*) args+=(dataflow.train_size=256 dataflow.val_size=128) ;;
    text_gpt) args+=(dataflow.train_samples=64 dataflow.val_blocks=8 model.layers=1) ;;
    shapes_unet) args+=(dataflow.train_size=64 dataflow.val_size=32) ;;
    *) args+=(dataflow.max_train_samples=256 dataflow.max_val_samples=128) ;;
  esac
  "$RUNNER" print-config "$cfg" "${args[@]}" > /dev/null || fail "print-config $name"
  # A few iterations are shorter than the recipes' warm-up: a constant LR for the run.
  run_capture "cfg_$name.txt" "$RUNNER" "$cfg" "${args[@]}" scheduler=constant
  expect_success "cfg_$name.txt" "shipped config $name did not run"
  echo "config $name: ${ELAPSED}s"
done
expect_contains "$(cat cfg_baseline_resnet50.txt)" "model: resnet50, 25557032 parameters" "resnet50 parameter count"
expect_contains "$(cat runs/baseline_resnet50/*/model_summary.txt)" "Total params: 25,557,032" "resnet50 model summary"
expect_contains "$(cat cfg_baseline_resnet50.txt)" "step: amp bf16 | memory layout channels_last" "resnet50 recipe precision"
finish
