#!/usr/bin/env bash
# runner --help / version / plugins / describe / print-config, run from another folder; the
# Hydra-style override forms (list index, +key, ~key, ${...} interpolation) and overrides.yaml.
source "$(dirname "$0")/lib.sh"
cd "$TMP"

out=$("$RUNNER" --help)
for cmd in run plugins describe print-config version; do expect_contains "$out" "  $cmd" "--help lists $cmd"; done

out=$("$RUNNER" version)
expect_contains "$out" "plugin API 4" "version"
expect_contains "$out" "dist backends: gloo, mpi" "version lists the dist backends"

out=$("$RUNNER" plugins)
for c in fashion_mnist mnist synthetic cifar10 cifar100 imagefolder mlp resnet8 resnet18 resnet34 resnet50 resnet101 resnet20 resnet56 resnet9 sgd adam adamw cross_entropy piecewise_linear cosine step multistep constant; do
  expect_contains "$out" "  $c " "plugins lists $c"
done
expect_contains "$out" "librunner_models.so" "plugins lists libraries"

out=$("$RUNNER" describe model/resnet50)
expect_contains "$out" "torchvision ResNet-50 (same parameter names; 25,557,032 parameters at 1000 classes)" "describe resnet50"
expect_contains "$out" "zero_init_residual" "describe resnet50: options"

out=$("$RUNNER" describe optimizer/sgd)
expect_contains "$out" "lr                   float   required" "describe sgd: lr"
expect_contains "$out" "nesterov             bool    default false" "describe sgd: nesterov"
expect_contains "$out" "[>= 0, <= 1]" "describe sgd: ranges"
out=$("$RUNNER" describe scheduler/piecewise_linear)
expect_contains "$out" "milestones" "describe piecewise_linear"

set +e
err=$("$RUNNER" describe optimizer/sdg 2>&1 >/dev/null); rc=$?
set -e
[ "$rc" -eq 2 ] || fail "describe unknown: exit $rc, expected 2"
[ "$err" = "error: describe: unknown optimizer 'sdg'; did you mean 'sgd'? (known: adam, adamw, sgd)" ] || fail "describe unknown: $err"

# print-config: resolved, defaults filled, overrides applied (both forms), bases merged.
out=$("$RUNNER" print-config "$SOURCE_DIR/configs/fashion_mnist_resnet8.yaml" optimizer.lr=0.2 --params "num_epochs=7;seed=1")
expect_contains "$out" "num_epochs: 7" "print-config --params"
expect_contains "$out" "seed: 1" "print-config --params seed"
expect_contains "$out" "  lr: 0.2" "print-config override"
expect_contains "$out" "  dampening: 0.0" "print-config default filled"
expect_contains "$out" "  root: /usr/share/datasets/fashion-mnist" "print-config base merged"
expect_contains "$out" "milestones: [[0, 0.0], [1ep, 0.1], [3ep, 0.0]]" "print-config milestones"
# What print-config prints is itself a valid config that resolves to the same text.
echo "$out" > resolved.yaml
again=$("$RUNNER" print-config resolved.yaml)
[ "$out" = "$again" ] || fail "print-config output does not resolve to itself"

echo "== overrides as Hydra users write them"
C="$SOURCE_DIR/configs/fashion_mnist_resnet8.yaml"
out=$("$RUNNER" print-config "$C" 'scheduler.milestones.1=[1ep, 0.2]' +grad_clip_norm=2.0 '~channels_last' \
  'output_path=${oc.env:HOME}/runs' 'optimizer.weight_decay=${optimizer.lr}' 'tracking.mlflow=${oc.env:NO_SUCH_VAR_X,null}')
expect_contains "$out" "milestones: [[0, 0.0], [1ep, 0.2], [3ep, 0.0]]" "a list item by index"
expect_contains "$out" "grad_clip_norm: 2.0" "+key adds a key"
expect_contains "$out" "channels_last: false" "~key removes it (the default applies)"
expect_contains "$out" "output_path: $HOME/runs" "\${oc.env:HOME}"
grep -A7 "^optimizer:" <<< "$out" | grep -q "weight_decay: 0.1" || fail "\${optimizer.lr}: $(grep -A7 "^optimizer:" <<< "$out")"
bad() {  # expected-message override...
  local want=$1; shift
  run_capture bad.txt "$RUNNER" print-config "$C" "$@"
  [ "$RC" -eq 2 ] || fail "$*: exit $RC, expected 2"
  expect_contains "$(cat bad.txt)" "$want" "$*"
  [ "$(wc -l < bad.txt)" -eq 1 ] || fail "$*: more than one line: $(cat bad.txt)"
}
bad "command line 'scheduler.milestones.7=1': scheduler.milestones.7: the list has 3 items (indices 0..2)" scheduler.milestones.7=1
bad "command line '+seed=3': seed is already set; change it with seed=..." +seed=3
bad "command line '~nope': nope: there is no such key to remove" '~nope'
bad "\${oc.env:NO_SUCH_VAR_X}: the environment variable NO_SUCH_VAR_X is not set (give a default: \${oc.env:NO_SUCH_VAR_X,VALUE})" 'output_path=${oc.env:NO_SUCH_VAR_X}'
bad "\${optimizer.rl}: there is no such key in the config" 'seed=${optimizer.rl}'
bad "'\${seed}': interpolations refer to each other in a cycle" 'seed=${seed}'
run_capture bad.txt "$RUNNER" "$C" --optimizer.lr=0.1
expect_contains "$(cat bad.txt)" "config overrides take no dashes: write optimizer.lr=0.1" "the Lightning-style hint"
[ "$RC" -eq 2 ] || fail "--optimizer.lr=0.1: exit $RC"

echo "== the run folder keeps the command line and the overrides"
run_capture run.txt "$RUNNER" "$C" output_path=ov num_epochs=1 dataflow.max_train_samples=256 \
  dataflow.max_val_samples=64 'scheduler=constant' 'tracking.report=false' -q
expect_success run.txt "a short run"
ov=$(cat ov/*/*/overrides.yaml)
expect_contains "$ov" "command: $RUNNER $C output_path=ov num_epochs=1 dataflow.max_train_samples=256 dataflow.max_val_samples=64 scheduler=constant tracking.report=false -q" "overrides.yaml: command"
expect_contains "$ov" "overrides: [output_path=ov, num_epochs=1, dataflow.max_train_samples=256, dataflow.max_val_samples=64, scheduler=constant, tracking.report=false]" "overrides.yaml: overrides"

echo "== a sweep: -m runs the grid one after another, then compares the runs"
run_capture sw.txt "$RUNNER" "$C" -m output_path=sw num_epochs=1 dataflow.max_train_samples=256 \
  dataflow.max_val_samples=64 scheduler=constant tracking.report=false 'optimizer.lr=0.1,0.02' 'seed=1,2' -q
expect_success sw.txt "sweep"
[ "$(ls -d sw/fashion_mnist_resnet8/*/ | wc -l)" -eq 4 ] || fail "a 2x2 sweep should make 4 run folders: $(ls sw/*)"
for point in "optimizer.lr=0.1, seed=1" "optimizer.lr=0.1, seed=2" "optimizer.lr=0.02, seed=1" "optimizer.lr=0.02, seed=2"; do
  grep -l "overrides: \[.*$point\]" sw/fashion_mnist_resnet8/*/overrides.yaml > /dev/null || fail "no run of $point"
done
expect_contains "$(cat sw.txt)" "sweep: run 4/4: output_path=sw num_epochs=1" "the sweep's progress lines"
expect_contains "$(cat sw.txt)" "sweep: 4 runs, 4 run folders, all finished" "the sweep's last line"
expect_contains "$(cat sw.txt)" "optimizer.lr" "the compare table shows the varied key"
ls sw/fashion_mnist_resnet8/sweep-*.html > /dev/null 2>&1 || fail "no sweep HTML"
run_capture bad.txt "$RUNNER" "$C" -m output_path=swbad 'optimizer.lr=0.1,fast'
[ "$RC" -eq 2 ] || fail "a sweep with a bad point: exit $RC"
expect_contains "$(cat bad.txt)" "error: sweep run 2: command line 'optimizer.lr=fast': optimizer.lr: expected a number" "a bad point fails first"
[ ! -e swbad ] || fail "a refused sweep started runs"
finish
