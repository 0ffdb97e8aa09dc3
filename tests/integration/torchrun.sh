#!/usr/bin/env bash
# Launching with the real torchrun (the venv's torch 2.11): one job over c10d's TCPStore and
# Gloo, the same training as mpirun -np 2, a restarted job (--max-restarts) continuing by
# itself from its last checkpoint, and launches runner refuses instead of training N copies.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dist_lib.sh"
TORCHRUN=$(dirname "$PYTHON")/torchrun
[ -x "$TORCHRUN" ] || { echo "FAIL: no torchrun beside $PYTHON (tools/setup.sh installs torch in the venv)"; exit 1; }
cd "$TMP"
write_equivalence_config eq.yaml
# torchrun with a free port of its own, so tests running side by side do not meet.
torchrun_n() {  # nproc args...
  local n=$1; shift
  timeout 300 "$TORCHRUN" --no-python --nproc_per_node="$n" --master_port="$(free_port)" "$@"
}

echo "== one job: torchrun --nproc_per_node=2 gives 2 ranks, one run folder, the same training as mpirun -np 2"
run_capture tr.txt torchrun_n 2 "$RUNNER" eq.yaml -q
expect_success tr.txt "torchrun --nproc_per_node=2"
[ "$(ls runs/eq | wc -l)" -eq 1 ] || fail "torchrun made $(ls runs/eq | wc -l) run folders: $(ls runs/eq)"
tr=$(ls -d runs/eq/*_mlp_gloo-2)
expect_contains "$(cat "$tr/run.log")" "world size: 2 (backend gloo)" "the run says its world and backend"
expect_contains "$(cat "$tr/run.log")" "batch: 64 global (32 per rank)" "the batch is split over the 2 ranks"
expect_contains "$(cat "$tr/launch.yaml")" "launcher: torchrun" "launch.yaml names the launcher"
"${MPIRUN[@]}" -np 2 -x OMP_NUM_THREADS=1 "$RUNNER" eq.yaml -q > np2.txt 2>&1 || { cat np2.txt; fail "mpirun -np 2"; }
np2=$(ls -d runs/eq/*_mlp_mpi-2)
compare_runs "$tr" "$np2" 1e-4 0.001 200 || fail "torchrun vs mpirun -np 2"
# Two ranks sum a + b in either order exactly: the weights are the same bits.
[ -n "$(weights_hash "$tr")" ] && [ "$(weights_hash "$tr")" = "$(weights_hash "$np2")" ] ||
  fail "torchrun's weights ($(weights_hash "$tr")) differ from mpirun's ($(weights_hash "$np2"))"

echo "== --max-restarts: rank 1 killed after a checkpoint; the restarted job continues that run by itself"
cat > long.yaml <<YAML
_base_: [eq.yaml]
num_epochs: 3
checkpoint_every: 50
YAML
"$TORCHRUN" --no-python --nproc_per_node=2 --master_port="$(free_port)" "$RUNNER" long.yaml output_path=ref -q \
  > ref.txt 2>&1 || { cat ref.txt; fail "uninterrupted 3-epoch run"; }
timeout 300 "$TORCHRUN" --no-python --nproc_per_node=2 --max-restarts=1 --master_port="$(free_port)" "$RUNNER" \
  long.yaml output_path=rs > rs.txt 2>&1 &
job=$!
for _ in $(seq 1 600); do
  compgen -G "rs/long/*/checkpoints/checkpoint_*.ckpt" > /dev/null && break
  sleep 0.05
done
agent=$(pgrep -P "$job")  # timeout -> torchrun's agent -> the 2 workers
workers=($(pgrep -P "$agent" || true))
[ "${#workers[@]}" -eq 2 ] || fail "expected 2 workers under torchrun, found: ${workers[*]:-none}"
kill -9 "${workers[1]}"
RC=0
wait "$job" || RC=$?
[ "$RC" -eq 0 ] || { tail -20 rs.txt; fail "the restarted job did not finish (exit $RC)"; }
expect_contains "$(cat rs.txt)" "failed (exitcode: -9) local_rank: 1" "torchrun saw the killed rank"
expect_contains "$(cat rs.txt)" "restart 1 of torchrun agent " "the restart says so"
expect_contains "$(cat rs.txt)" ": continuing rs/long/" "the restart continues the run folder"
expect_contains "$(cat rs.txt)" "resumed from rs/long/" "the restart resumes from a checkpoint"
[ "$(ls rs/long | wc -l)" -eq 1 ] || fail "the restart made another run folder: $(ls rs/long)"
# The gradient hooks work on the resumed parameters: every bucket still overlaps backward.
overlap=$(grep -o '[0-9]* of [0-9]* bucket launches overlapped' rs.txt | tail -1)
read -r done_ _ total _ <<< "$overlap"
[ -n "$overlap" ] && [ "$done_" -gt 0 ] && [ "$done_" -eq "$total" ] ||
  fail "after the restart: '$overlap' (expected all launches overlapped with backward)"
rs=$(ls -d rs/long/*)
[ "$(weights_hash "$rs")" = "$(weights_hash "$(ls -d ref/long/*)")" ] ||
  fail "killed + restarted ($(weights_hash "$rs")) differs from uninterrupted ($(weights_hash "$(ls -d ref/long/*)"))"
"$PYTHON" - "$rs/metrics.jsonl" <<'PY' || fail "metrics.jsonl after the restart"
import json, sys
its = [json.loads(l)["iteration"] for l in open(sys.argv[1]) if "train/batch_loss" in l]
assert its == list(range(1, 601)), f"{len(its)} rows, not iterations 1..600 once each"
print("metrics.jsonl: iterations 1..600 once each")
PY

echo "== a killed rank without restarts ends the job (no hang)"
run_capture kill.txt torchrun_n 2 "$RUNNER" long.yaml output_path=k crash_iteration=20 crash_rank=1 crash_mode=kill -q
[ "$RC" -ne 0 ] && [ "$RC" -ne 124 ] || fail "a killed rank: exit $RC, expected a failure that is not a timeout"

echo "== backends the launch cannot use, and launches runner refuses"
run_capture be.txt torchrun_n 2 "$RUNNER" eq.yaml output_path=bad dist.backend=mpi -q
[ "$RC" -ne 0 ] || fail "dist.backend=mpi under torchrun was accepted"
expect_contains "$(cat be.txt)" "dist.backend: mpi needs an MPI launch (mpirun, srun --mpi=pmix) and torchrun started this job; use gloo or auto" "mpi under torchrun"
[ "$(grep -c '^error:' be.txt)" -eq 1 ] || fail "the backend error is not said once: $(cat be.txt)"
expect_one_line_errors eq.yaml "dist.backend=gloo|dist.backend: gloo joins torchrun's store and this job was not started by torchrun"
for spec in "WORLD_SIZE=2|WORLD_SIZE=2 but RANK, MASTER_ADDR, MASTER_PORT not set: start runner with torchrun" \
  "SLURM_STEP_NUM_TASKS=2|srun started 2 tasks that MPI does not join: use srun --mpi=pmix" \
  "PMI_SIZE=4|started 4 processes that this runner's Open MPI does not join"; do
  run_capture refused.txt env "${spec%%|*}" "$RUNNER" eq.yaml output_path=bad
  [ "$RC" -eq 2 ] || fail "${spec%%|*}: exit $RC, expected 2"
  expect_contains "$(cat refused.txt)" "${spec#*|}" "${spec%%|*}"
  [ "$(wc -l < refused.txt)" -eq 1 ] || fail "${spec%%|*}: more than one line: $(cat refused.txt)"
done
[ ! -e bad ] || fail "a refused launch left a run folder"

finish
