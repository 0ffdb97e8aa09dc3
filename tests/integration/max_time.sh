#!/usr/bin/env bash
# max_time: a wall-clock budget. When it is spent the run finishes the iteration,
# checkpoints, writes its reports and exits 75; resume_from=auto then finishes the run
# exactly as an uninterrupted one (same metrics.jsonl bytes, same final weights), with
# one rank and with two under mpirun.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dist_lib.sh"
cd "$TMP"
cat > mt.yaml <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_mlp.yaml]
num_epochs: 3
deterministic: true
log_every_iters: 1
dataflow: {batch_size: 64, max_train_samples: 25600, max_val_samples: 1000}
model: {name: mlp, hidden: [512, 512]}
checkpoint_every: null
threads: 1  # as the two-rank runs have on 2 cores: MKL's 2-thread GEMM order can differ by process (README, Exact)
YAML

echo "== bad values are refused before anything runs"
for bad in 4x 0s -5m h 1h30; do
  run_capture bad.txt "$RUNNER" mt.yaml max_time="$bad" output_path=bad
  [ "$RC" -eq 2 ] || fail "max_time=$bad: exit $RC, expected 2"
  expect_contains "$(cat bad.txt)" "max_time: expected a duration such as 90s, 45m, 4h or 1d12h" "max_time=$bad"
done
[ ! -e bad ] || fail "a refused max_time left a run folder"

echo "== reference run (no budget)"
"$RUNNER" mt.yaml output_path=ref -q || fail "reference run"
ref=$(ls -d ref/mt/*)

check_stopped() {  # output_file run_dir what
  local iters
  expect_contains "$(cat "$1")" "max_time: 2s reached at iteration" "$3: budget message"
  expect_contains "$(cat "$1")" "stopped by max_time after iteration" "$3: stop message"
  grep -q '^status: stopped$' "$2/summary.yaml" || fail "$3: summary.yaml does not say stopped"
  [ -s "$2/report.html" ] || fail "$3: no report.html"
  iters=$(grep -o 'after iteration [0-9]*' "$1" | head -1 | grep -o '[0-9]*$')
  [ -n "$iters" ] && [ "$iters" -lt 1200 ] || fail "$3: stopped at iteration '$iters' (the run has 1200)"
  [ "$(cat "$2/checkpoints/latest")" = "$(printf 'checkpoint_%08d.ckpt' "$iters")" ] ||
    fail "$3: latest checkpoint is not the stop iteration $iters"
}

echo "== one rank: max_time=2s stops with exit 75, resume finishes the run"
run_capture one.txt "$RUNNER" mt.yaml output_path=one max_time=2s
[ "$RC" -eq 75 ] || { tail -5 one.txt; fail "max_time: exit $RC, expected 75"; }
run=$(ls -d one/mt/*)
check_stopped one.txt "$run" "one rank"
run_capture one2.txt "$RUNNER" mt.yaml output_path=one resume_from=auto
expect_success one2.txt "resume after max_time"
cmp -s "$ref/metrics.jsonl" "$run/metrics.jsonl" || fail "one rank: metrics.jsonl differs from the uninterrupted run"
[ -n "$(final_hash "$ref")" ] && [ "$(final_hash "$ref")" = "$(final_hash "$run")" ] ||
  fail "one rank: final weights differ ($(final_hash "$ref") vs $(final_hash "$run"))"

echo "== a stop on an epoch's last iteration validates that epoch first (one iteration per epoch)"
cat > e1.yaml <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_mlp.yaml]
num_epochs: 300
deterministic: true
log_every_iters: 1
dataflow: {batch_size: 640, max_train_samples: 640, max_val_samples: 128}
model: {name: mlp, hidden: [64]}
scheduler: constant
tracking: {report: false, tensorboard: false}
threads: 1  # MKL's 2-thread float32 GEMM may sum in another order for a whole process (README, Exact)
YAML
"$RUNNER" e1.yaml output_path=e1ref -q || fail "1-iteration-epoch reference"
run_capture e1.txt "$RUNNER" e1.yaml output_path=e1 max_time=1s
[ "$RC" -eq 75 ] || fail "1-iteration epochs: max_time exit $RC, expected 75"
run_capture e1r.txt "$RUNNER" e1.yaml output_path=e1 resume_from=auto -q
expect_success e1r.txt "resume after a stop at an epoch's end"
cmp -s "$(ls -d e1ref/e1/*)/metrics.jsonl" "$(ls -d e1/e1/*)/metrics.jsonl" ||
  fail "a stop at an epoch's end lost that epoch's validation: $(diff "$(ls -d e1ref/e1/*)/metrics.jsonl" "$(ls -d e1/e1/*)/metrics.jsonl" | head -3)"

echo "== two ranks: every rank stops at the same iteration"
"${MPIRUN[@]}" -np 2 "$RUNNER" mt.yaml output_path=ref2 -q > /dev/null 2>&1 || fail "2-rank reference"
run_capture two.txt "${MPIRUN[@]}" -np 2 "$RUNNER" mt.yaml output_path=two max_time=2s
[ "$RC" -eq 75 ] || { tail -5 two.txt; fail "2 ranks, max_time: exit $RC, expected 75"; }
run=$(ls -d two/mt/*)
check_stopped two.txt "$run" "two ranks"
run_capture two2.txt "${MPIRUN[@]}" -np 2 "$RUNNER" mt.yaml output_path=two resume_from=auto
expect_success two2.txt "2-rank resume after max_time"
cmp -s "$(ls -d ref2/mt/*)/metrics.jsonl" "$run/metrics.jsonl" || fail "two ranks: metrics.jsonl differs"
finish
