#!/usr/bin/env bash
# issue 17's benchmark: runner against the fastest plain PyTorch of the same recipe on the same
# torch (tools/bench/reference_recipe.py, run by the project venv's python): real Fashion-MNIST,
# batch 128, crop+flip, SGD Nesterov lr 0.1 wd 5e-4, one warm-up epoch then linear decay, 3 epochs
# (runner: tools/bench/recipe_{resnet8,mlp}.yaml). Whole-process wall time, runner and reference
# interleaved (ABAB...), REPS times each, for resnet8 fp32, resnet8 bf16 and mlp fp32; prints the
# medians, the speed-up (reference / runner) and the test accuracies beside the issue's targets.
#   tools/bench/vs_pytorch.sh [REPS=3] [extra runner overrides...]
# Takes about 3 minutes per repetition on 2 cores of the AMD EPYC (9-10 minutes at REPS=3), about 6 on
# the Intel Xeon of session 30 (17m39s at REPS=3). RUNNER=path/to/runner and PYTHON=... override;
# DEVICE=cuda runs both on the GPU (runner device=cuda, the reference --device cuda), DATA_ROOT=DIR
# reads Fashion-MNIST from DIR instead of /usr/share/datasets/fashion-mnist, REF_ARGS="..." adds
# arguments to every reference run (e.g. REF_ARGS=--fused=1 beside runner's optimizer.fused=true).
# The synthetic-data samples/s comparison is tools/bench/vs_pytorch_synthetic.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNNER=${RUNNER:-$( [ -x build/bin/runner ] && echo build/bin/runner || command -v runner)}
PY=${PYTHON:-/opt/runner/venv-torch2.11.0/bin/python}
REPS=${1:-3}; shift || true
DEVICE=${DEVICE:-cpu}
DATA=(); REF_DATA=()
[ -n "${DATA_ROOT:-}" ] && DATA=(dataflow.root="$DATA_ROOT") && REF_DATA=(--root "$DATA_ROOT")
OUT=$(mktemp -d /tmp/runner-vs-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(lscpu | grep -ow 'avx512f\|avx512_bf16\|avx512_vnni\|amx_bf16\|amx_tile\|amx_int8' | sort -u | tr '\n' ' ')"
echo "torch: $("$PY" -c 'import torch; print(torch.__version__)') | $("$RUNNER" version | head -2 | tail -1)"

# wall SECONDS-FILE LOG-FILE command...: runs it, appends its wall seconds
wall() {
  local f=$1 log=$2; shift 2
  local s; s=$(date +%s%N)
  "$@" > "$log" 2>&1 || return 1
  awk -v ns=$(( $(date +%s%N) - s )) 'BEGIN{printf "%.2f\n", ns / 1e9}' >> "$f"
}
run_runner() {  # model amp rep; retried once (the binary may be relinked meanwhile)
  local model=$1 amp=$2 log="$OUT/runner-$1-$2-$3.log"; shift 3
  for try in 1 2; do
    rm -rf "$OUT/runs"
    if wall "$OUT/runner-$model-$amp.s" "$log" "$RUNNER" "tools/bench/recipe_$model.yaml" amp=$amp device=$DEVICE "${DATA[@]}" output_path="$OUT/runs" "$@"; then
      grep '^test accuracy:' "$log" | awk '{print $3}' >> "$OUT/runner-$model-$amp.acc"; return 0
    fi
    echo "runner $model $amp failed (try $try):"; tail -3 "$log"
  done
  exit 1
}
run_ref() {  # model amp rep
  local log="$OUT/ref-$1-$2-$3.log"
  wall "$OUT/ref-$1-$2.s" "$log" "$PY" tools/bench/reference_recipe.py --model $1 --amp $2 --device $DEVICE "${REF_DATA[@]}" ${REF_ARGS:-} ||
    { tail -3 "$log"; exit 1; }
  sed -n 's/.*test_acc=\([0-9.]*\).*/\1/p' "$log" >> "$OUT/ref-$1-$2.acc"
}
median() { sort -g "$1" | awk '{v[NR]=$1} END{print NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
all() { paste -sd/ "$1"; }

CASES="resnet8:none resnet8:bf16 mlp:none"
for rep in $(seq "$REPS"); do
  for case in $CASES; do
    IFS=: read -r model amp <<< "$case"
    run_runner $model $amp $rep "$@"
    run_ref $model $amp $rep
    echo "rep $rep $model $amp: runner $(tail -1 "$OUT/runner-$model-$amp.s") s ($(tail -1 "$OUT/runner-$model-$amp.acc")), reference $(tail -1 "$OUT/ref-$model-$amp.s") s ($(tail -1 "$OUT/ref-$model-$amp.acc"))"
  done
done

echo
echo "whole-process wall time, median of $REPS interleaved runs (speed-up = reference / runner)"
printf "| %-7s | %-4s | %-10s | %-13s | %-8s | %-11s | %-15s | %-15s |\n" model amp "runner s" "reference s" speed-up target "runner acc" "reference acc"
printf "|---------|------|------------|---------------|----------|-------------|-----------------|-----------------|\n"
for case in $CASES; do
  IFS=: read -r model amp <<< "$case"
  r=$(median "$OUT/runner-$model-$amp.s"); p=$(median "$OUT/ref-$model-$amp.s")
  ra=$(median "$OUT/runner-$model-$amp.acc"); pa=$(median "$OUT/ref-$model-$amp.acc")
  case $case in
    resnet8:none) target=">= 1.25x" ;;
    resnet8:bf16) target=">= 2x vs fp32"; p32=$(median "$OUT/ref-resnet8-none.s") ;;
    mlp:none) target=">= 3x" ;;
  esac
  sp=$(awk -v a="$r" -v b="$p" 'BEGIN{printf "%.2fx", b / a}')
  [ "$case" = resnet8:bf16 ] && sp="$sp ($(awk -v a="$r" -v b="$p32" 'BEGIN{printf "%.2fx", b / a}') vs fp32)"
  printf "| %-7s | %-4s | %-10s | %-13s | %-8s | %-11s | %-15s | %-15s |\n" $model $amp "$r" "$p" "$sp" "$target" "$ra" "$pa"
done
echo
echo "all runs (s): $(for c in $CASES; do IFS=: read -r m a <<< "$c"; echo -n "$m $a runner $(all "$OUT/runner-$m-$a.s") reference $(all "$OUT/ref-$m-$a.s"); "; done)"
