#!/usr/bin/env bash
# Never lose a run: checkpoints, exact resume (single process and mpirun -np 2), stop
# signals, damaged files, and kill -9 at random moments.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dist_lib.sh"
cd "$TMP"
cat > ck.yaml <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_mlp.yaml]
num_epochs: 2
deterministic: true
threads: 1  # one-process runs compared bit for bit: MKL's 2-thread GEMM order can differ by process (README, Exact)
log_every_iters: 1
dataflow: {batch_size: 64, max_train_samples: 3200, max_val_samples: 1000, augment: true}
model: {name: mlp, hidden: [128]}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
scheduler: {name: cosine, warmup: 10}
checkpoint_every: 30
YAML
same_run() {  # reference_run resumed_run what: metrics.jsonl byte-identical, same final weights
  cmp -s "$1/metrics.jsonl" "$2/metrics.jsonl" || fail "$3: metrics.jsonl differs from the uninterrupted run"
  [ -n "$(final_hash "$1")" ] && [ "$(final_hash "$1")" = "$(final_hash "$2")" ] ||
    fail "$3: final weights differ ($(final_hash "$1") vs $(final_hash "$2"))"
}

echo "== reference runs (uninterrupted)"
"$RUNNER" ck.yaml output_path=ref -q || fail "reference run"
ref=$(ls -d ref/ck/*)
ls "$ref/checkpoints" | grep -q '^checkpoint_00000100.ckpt$' || fail "no end-of-run checkpoint"
[ "$(ls "$ref"/checkpoints/*.ckpt | wc -l)" -eq 2 ] || fail "n_saved_checkpoints: expected 2 files"
[ "$(cat "$ref/checkpoints/latest")" = "checkpoint_00000100.ckpt" ] || fail "latest does not name the newest"
"${MPIRUN[@]}" -np 2 "$RUNNER" ck.yaml output_path=ref2 -q > /dev/null 2>&1 || fail "2-rank reference run"
ref2=$(ls -d ref2/ck/*)

echo "== crash + resume_from: auto is the same run, bit for bit"
for k in 75 51 31; do  # mid-epoch; right after an epoch end (50); right after a checkpoint (30)
  run_capture "crash$k.txt" "$RUNNER" ck.yaml output_path="c$k" crash_iteration=$k -q
  [ "$RC" -eq 1 ] || fail "crash at $k: exit $RC"
  "$RUNNER" ck.yaml output_path="c$k" resume_from=auto -q > "resume$k.txt" 2>&1 || { cat "resume$k.txt"; fail "resume after a crash at $k"; }
  same_run "$ref" "$(ls -d c$k/ck/*)" "crash at iteration $k"
done
expect_contains "$(cat c75/ck/*/run.log)" "resumed from c75/ck/" "run.log says where it resumed from"
run_capture crashval.txt "$RUNNER" ck.yaml output_path=cval crash_iteration=50 crash_mode=validation -q
[ "$RC" -eq 1 ] || fail "crash during validation: exit $RC"
"$RUNNER" ck.yaml output_path=cval resume_from=auto -q > resume_val.txt 2>&1 || { cat resume_val.txt; fail "resume after a crash in validation"; }
expect_contains "$(cat cval/ck/*/run.log)" "checkpoint_00000030.ckpt: epoch 1, iteration 30" "resumed from before the validation"
same_run "$ref" "$(ls -d cval/ck/*)" "crash during the epoch-1 validation"

echo "== the same under mpirun -np 2"
"${MPIRUN[@]}" -np 2 "$RUNNER" ck.yaml output_path=m crash_iteration=75 -q > /dev/null 2>&1 && fail "2-rank crash"
"${MPIRUN[@]}" -np 2 "$RUNNER" ck.yaml output_path=m resume_from=auto -q > m.txt 2>&1 || { cat m.txt; fail "2-rank resume"; }
same_run "$ref2" "$(ls -d m/ck/*)" "2 ranks, crash at 75"

echo "== SIGTERM: checkpoint, exit 75, resume"
# 10 epochs of 500 steps (2.5-3 s of training): still running when the signal comes 0.5 s after
# the first metrics line (2 epochs, 0.5-0.6 s of training at one thread, could end before it).
"$RUNNER" ck.yaml output_path=sig dataflow.max_train_samples=32000 num_epochs=10 checkpoint_every=null -q > sig.txt 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s sig/ck/*/metrics.jsonl ] 2> /dev/null && break; sleep 0.1; done
sleep 0.5
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 75 ] || fail "SIGTERM: exit $rc, expected 75"
expect_contains "$(cat sig.txt)" "stopped by SIGTERM after iteration" "SIGTERM message"
"$RUNNER" ck.yaml output_path=sig dataflow.max_train_samples=32000 num_epochs=10 checkpoint_every=null resume_from=auto -q \
  > sig2.txt 2>&1 || { cat sig2.txt; fail "resume after SIGTERM"; }
"$RUNNER" ck.yaml output_path=sigref dataflow.max_train_samples=32000 num_epochs=10 checkpoint_every=null -q || fail "reference"
same_run "$(ls -d sigref/ck/*)" "$(ls -d sig/ck/*)" "SIGTERM + resume"

echo "== damaged and foreign checkpoints"
cp -r "$ref" dmg && run=dmg
newest="$run/checkpoints/checkpoint_00000100.ckpt"
printf '\x01' | dd of="$newest" bs=1 seek=5000 conv=notrunc status=none  # flip one byte
run_capture d1.txt "$RUNNER" ck.yaml output_path=x resume_from="$newest"
[ "$RC" -eq 2 ] || fail "damaged file: exit $RC"
[ "$(cat d1.txt)" = "error: resume_from: $newest: damaged checkpoint (checksum mismatch)" ] || fail "damaged: $(cat d1.txt)"
"$RUNNER" ck.yaml output_path=x resume_from="$run" num_epochs=2 > d2.txt 2>&1 || fail "fallback to the previous file"
expect_contains "$(cat d2.txt)" "resume: $newest: damaged checkpoint (checksum mismatch); trying the previous checkpoint" \
  "the damaged newest file is reported"
expect_contains "$(cat d2.txt)" "resumed from $run/checkpoints/checkpoint_00000090.ckpt" "the previous file is used"
head -c 1000 "$run/checkpoints/checkpoint_00000090.ckpt" > trunc.ckpt
run_capture d3.txt "$RUNNER" ck.yaml resume_from=trunc.ckpt
[ "$RC" -eq 2 ] && [ "$(cat d3.txt)" = "error: resume_from: trunc.ckpt: damaged checkpoint (truncated: 1000 bytes)" ] ||
  fail "truncated: exit $RC: $(cat d3.txt)"
run_capture d4.txt "$RUNNER" ck.yaml resume_from="$ref" model.hidden='[64]' dataflow.batch_size=32
[ "$RC" -eq 2 ] || fail "other model: exit $RC"
[ "$(cat d4.txt)" = "error: resume_from: $ref/checkpoints/checkpoint_00000100.ckpt: the config differs from the checkpoint's in dataflow.batch_size (64 -> 32), model.hidden ([128] -> [64]); list keys that may change in resume_allow_changes" ] ||
  fail "other model: $(cat d4.txt)"
cp -r "$ref" more
"$RUNNER" ck.yaml output_path=x resume_from=more num_epochs=3 'resume_allow_changes=[num_epochs]' -q > d5.txt 2>&1 ||
  { cat d5.txt; fail "more epochs with resume_allow_changes"; }
grep -q '"epoch": 3, "val/accuracy"' more/metrics.jsonl || fail "the third epoch did not run"

echo "== best models and early stopping, also across a resume"
bes=(ck.yaml num_epochs=8 'best={n_saved: 2}' 'early_stopping={metric: val/accuracy, mode: max, patience: 1, min_delta: 0.01}')
"$RUNNER" "${bes[@]}" output_path=bref > bref.txt 2>&1 || { cat bref.txt; fail "best/early stopping run"; }
expect_contains "$(cat bref.txt)" "early stopping: val/accuracy has not improved by more than 0.01 for 1 validation(s)"   "early stopping message"
"$PYTHON" - bref/ck/*/metrics.jsonl bref/ck/*/best <<'PY' || fail "best/early stopping results"
import json, os, sys
val = [json.loads(l) for l in open(sys.argv[1]) if "val/accuracy" in l]
assert 1 < len(val) < 8, f"early stopping should end before epoch 8, ran {len(val)} epochs"
best = sorted(val, key=lambda r: -r["val/accuracy"])[:2]
want = sorted(f"best_epoch{r['epoch']}_val-accuracy={r['val/accuracy']:.4f}.{ext}" for r in best
              for ext in ("pt", "safetensors"))  # each best model in both formats
got = sorted(os.listdir(sys.argv[2]))
assert got == want, (got, want)
print(f"stopped after {len(val)} epochs; kept {got}")
PY
"$RUNNER" "${bes[@]}" output_path=bres crash_iteration=75 -q > /dev/null 2>&1 && fail "crash at 75"
"$RUNNER" "${bes[@]}" output_path=bres resume_from=auto -q > bres.txt 2>&1 || { cat bres.txt; fail "resume with best/early stopping"; }
same_run "$(ls -d bref/ck/*)" "$(ls -d bres/ck/*)" "best/early stopping across a resume"
[ "$(ls bref/ck/*/best)" = "$(ls bres/ck/*/best)" ] || fail "best files differ after a resume"

echo "== kill -9 at 20 random moments, then finish: the same run"
cfg=(ck.yaml output_path=k dataflow.max_train_samples=12800 checkpoint_every=7 -q)
"$RUNNER" ck.yaml output_path=kref dataflow.max_train_samples=12800 checkpoint_every=7 -q || fail "reference"
RANDOM=4242
for i in $(seq 20); do
  extra=()
  ls k/ck/*/checkpoints/checkpoint_*.ckpt > /dev/null 2>&1 && extra=(resume_from=auto)
  "$RUNNER" "${cfg[@]}" "${extra[@]}" > /dev/null 2>&1 &
  pid=$!
  sleep "$((RANDOM % 25 / 10 + 1)).$((RANDOM % 10))"
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
done
"$RUNNER" "${cfg[@]}" resume_from=auto > kfinal.txt 2>&1 || { cat kfinal.txt; fail "finishing after 20 kills"; }
[ "$(ls -d k/ck/* | wc -l)" -eq 1 ] || fail "kills created more than one run folder: $(ls k/ck)"
same_run "$(ls -d kref/ck/*)" "$(ls -d k/ck/*)" "20 x kill -9"
# A write killed midway leaves only a dot-file, never read as a checkpoint and removed by the next save.
if ls k/ck/*/checkpoints/.*.tmp > /dev/null 2>&1; then fail "temporary files left: $(ls -a k/ck/*/checkpoints)"; fi
finish
