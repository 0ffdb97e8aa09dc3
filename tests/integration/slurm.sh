#!/usr/bin/env bash
# Slurm as clusters run it: a one-node Slurm (Debian's slurm-wlm and munge; slurmctld and
# slurmd started here on localhost, tools/slurm/local_cluster.sh) and runner under
# `srun --mpi=pmix`: one job of 2 ranks equal to mpirun's, `scancel` (SIGTERM: a checkpoint,
# exit 75, then an exact resume), and tools/slurm/train.sbatch (the README's recipe), whose job
# requeues and resumes by itself both after the time-limit signal (USR1) and after preemption.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/dist_lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "skipped: slurmd must run as root here"; exit 77; }
cd "$TMP"
CLUSTER=$TMP/slurm
eval "$("$SOURCE_DIR/tools/slurm/local_cluster.sh" up "$CLUSTER")"
trap '"$SOURCE_DIR/tools/slurm/local_cluster.sh" down "$CLUSTER"; rm -rf "$TMP"' EXIT
write_equivalence_config eq.yaml
# Waits until job $1 has left the queue (a requeued job is held ~2 min by Slurm: released now).
wait_job() {  # job_id
  for _ in $(seq 1 240); do
    local state
    state=$(squeue -h -j "$1" -o '%T %r' 2> /dev/null || true)
    [ -z "$state" ] && return 0
    [[ "$state" == "PENDING BeginTime" ]] && scontrol update jobid="$1" StartTime=now
    sleep 0.5
  done
  fail "job $1 still queued: $(squeue -h -j "$1" -o '%T %r')"
}
first_checkpoint() {  # run_root
  for _ in $(seq 1 400); do compgen -G "$1/*/checkpoints/checkpoint_*.ckpt" > /dev/null && return 0; sleep 0.05; done
  fail "no checkpoint under $1"
}

echo "== srun --mpi=pmix -n 2: one job of 2 ranks, the same training as mpirun -np 2"
run_capture sr.txt timeout 300 srun --mpi=pmix -n 2 "$RUNNER" eq.yaml -q
expect_success sr.txt "srun --mpi=pmix -n 2"
sr=$(ls -d runs/eq/*_mlp_mpi-2)
[ "$(ls runs/eq | wc -l)" -eq 1 ] || fail "srun made $(ls runs/eq | wc -l) run folders"
expect_contains "$(cat "$sr/launch.yaml")" "id: slurm job " "launch.yaml keeps the job id"
"${MPIRUN[@]}" -np 2 "$RUNNER" eq.yaml output_path=mp -q > mp.txt 2>&1 || { cat mp.txt; fail "mpirun -np 2"; }
compare_runs "$sr" "$(ls -d mp/eq/*)" 1e-4 0.001 200 || fail "srun vs mpirun"
[ -n "$(weights_hash "$sr")" ] && [ "$(weights_hash "$sr")" = "$(weights_hash "$(ls -d mp/eq/*)")" ] ||
  fail "srun's weights differ from mpirun's"

cat > long.yaml <<YAML
_base_: [eq.yaml]
num_epochs: 4
checkpoint_every: 50
YAML
"${MPIRUN[@]}" -np 2 "$RUNNER" long.yaml output_path=ref -q > ref.txt 2>&1 || { cat ref.txt; fail "reference run"; }
REF=$(weights_hash "$(ls -d ref/long/*)")
[ -n "$REF" ] || fail "no weights hash in the reference run's log"

echo "== scancel: SIGTERM to the ranks, a checkpoint, exit 75; the resume ends as the uninterrupted run"
srun --mpi=pmix -n 2 "$RUNNER" long.yaml output_path=sc > sc.txt 2>&1 &
srun_pid=$!
first_checkpoint sc/long
scancel "$(squeue -h -o %i | head -1)"
wait "$srun_pid" || true
S=$(ls -d sc/long/*)
expect_contains "$(cat "$S/run.log")" "stopped by SIGTERM after iteration" "the ranks stop on scancel's SIGTERM"
grep -q '^status: stopped' "$S/summary.yaml" || fail "summary.yaml: $(grep status "$S/summary.yaml")"
run_capture scr.txt timeout 300 srun --mpi=pmix -n 2 "$RUNNER" long.yaml output_path=sc resume_from=auto -q
expect_success scr.txt "resume after scancel"
[ "$(weights_hash "$S")" = "$REF" ] || fail "scancel + resume: $(weights_hash "$S"), uninterrupted $REF"

echo "== tools/slurm/train.sbatch: the time-limit signal (USR1), exit 75, the job requeues itself and resumes"
jid=$(RUNNER=$RUNNER sbatch --parsable --output="$TMP/usr1-%j.out" "$SOURCE_DIR/tools/slurm/train.sbatch" \
  "$TMP/long.yaml" output_path="$TMP/usr1")
first_checkpoint usr1/long
scancel --signal=USR1 "$jid"  # what Slurm sends at --signal=USR1@60
wait_job "$jid"
U=$(ls -d usr1/long/*)
out=$(cat "$TMP/usr1-$jid.out")
expect_contains "$out" "stopped by SIGUSR1 after iteration" "USR1 stops the ranks after a checkpoint"
expect_contains "$out" "restart 1 of slurm job $jid: continuing $TMP/usr1/long/" "the requeued job continues its run"
[ "$(ls usr1/long | wc -l)" -eq 1 ] || fail "the requeued job made another run folder"
[ "$(weights_hash "$U")" = "$REF" ] || fail "USR1 + requeue: $(weights_hash "$U"), uninterrupted $REF"

echo "== preemption (scontrol requeue): SIGTERM, Slurm requeues, the job resumes by itself"
jid=$(RUNNER=$RUNNER sbatch --parsable --output="$TMP/pre-%j.out" "$SOURCE_DIR/tools/slurm/train.sbatch" \
  "$TMP/long.yaml" output_path="$TMP/pre")
first_checkpoint pre/long
scontrol requeue "$jid"
wait_job "$jid"
P=$(ls -d pre/long/*)
out=$(cat "$TMP/pre-$jid.out")
expect_contains "$out" "stopped by SIGTERM after iteration" "preemption stops the ranks after a checkpoint"
expect_contains "$out" "restart 1 of slurm job $jid: continuing" "the preempted job continues its run"
[ "$(weights_hash "$P")" = "$REF" ] || fail "preemption + requeue: $(weights_hash "$P"), uninterrupted $REF"

finish
