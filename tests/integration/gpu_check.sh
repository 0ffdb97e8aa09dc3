#!/usr/bin/env bash
# tools/gpu/check.sh's plumbing, on the CPU: its --dry-run-cpu mode runs the same nine checks
# (the CPU as both sides, small sizes, the mpi backend for nccl, mpirun -np 2 for two GPUs, the
# eager ResNet-50 script with the venv's torchvision; check 9, cuda_graph, is refused on the CPU,
# and its timing of an epoch's smaller last batch runs on 8 batches)
# and must pass and write its table. The
# GPU figures themselves need a GPU (README, GPUs).
source "$(dirname "$0")/lib.sh"
cd "$SOURCE_DIR"
run_capture "$TMP/check.txt" env RUNNER="$RUNNER" PYTHON="$PYTHON" RESULTS="$TMP/results.md" WORK="$TMP/work" \
  tools/gpu/check.sh --dry-run-cpu
[ "$RC" -eq 0 ] || fail "check.sh --dry-run-cpu: exit $RC: $(tail -20 "$TMP/check.txt")"
for row in "1. CPU vs CPU (dry run), mlp" "1. CPU vs CPU (dry run), resnet8" "2. resnet8" "3. crash at 75 + resume" \
  "4. mpi world size 2 vs 1" "5. PyTorch eager images/s" "6. profile on cpu, resnet8, amp none" "6. profile on cpu, resnet8, amp bf16" "7. optimizer.fused on cpu, mlp, sgd" \
  "7. optimizer.fused on cpu, mlp, adamw" "8. bf16, ema, no_decay, clipping, accumulation" "8. runner eval of that run" "9. cuda_graph on the CPU" \
  "9. resnet8 bf16 eager: the smaller last batch's step (not autotuned), the validation | the last batch's step 0."; do
  grep -qF "| $row" "$TMP/results.md" || fail "results table has no row '$row'"
done
! grep -q "| FAIL" "$TMP/results.md" || fail "a check failed: $(grep '| FAIL' "$TMP/results.md")"
cat "$TMP/results.md"
echo "gpu_check (dry run): OK"
