# Shared by the distributed tests: an mpirun that works as root on 2 cores, the
# equivalence config, and the comparison of two runs' metrics.jsonl.
: "${MPIEXEC:?set by ctest}"
MPIRUN=("$MPIEXEC" --allow-run-as-root --oversubscribe)

# mlp, deterministic, global batch 64, 200 iterations (crop+flip augmentation on).
write_equivalence_config() {  # path
  cat > "$1" <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_mlp.yaml]
num_epochs: 1
deterministic: true
log_every_iters: 1
output_path: runs
dataflow: {batch_size: 64, max_train_samples: 12800, max_val_samples: 2000, augment: true}
optimizer: {name: sgd, lr: 0.02, momentum: 0.9}
scheduler: constant
YAML
}

# Compares train/batch_loss (relative) and val/accuracy (absolute) of two run folders; with
# HELD, only the first HELD losses are held to the limit. Two runs that sum the same gradients
# in another order (one process against two ranks, one thread against two) part by about 1e-7
# at the first iteration, and training amplifies that: on one trajectory the equivalence run
# stayed at 2e-7 over 200 iterations (AMD EPYC), on another it grew from iteration ~55 to 1e-2
# by 200 (Intel Xeon, the same binary; one thread against two threads in one process drifts as
# much). A wrong reduction differs at the first iteration.
compare_runs() {  # run_a run_b max_rel_loss max_abs_acc expected_iterations [held]
  "$PYTHON" - "$@" <<'PY'
import json, sys
a, b, rel, acc, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
held = int(sys.argv[6]) if len(sys.argv) > 6 else n
def read(run):
    rows = [json.loads(l) for l in open(run + "/metrics.jsonl")]
    return ([r["train/batch_loss"] for r in rows if "train/batch_loss" in r],
            [r["val/accuracy"] for r in rows if "val/accuracy" in r])
(la, va), (lb, vb) = read(a), read(b)
assert len(la) == len(lb) == n, f"iterations: {len(la)} vs {len(lb)}, expected {n}"
diff = [abs(x - y) / abs(x) for x, y in zip(la, lb)]
worst = max(diff[:held])
extra = f" (the first {held}; over all {n}: {max(diff):.3g})" if held < n else ""
print(f"{n} batch losses, max relative difference {worst:.3g}{extra}; val/accuracy {va[-1]:.4f} vs {vb[-1]:.4f}")
assert worst <= rel, f"batch loss differs by {worst:.3g} relative (limit {rel})"
assert abs(va[-1] - vb[-1]) <= acc, f"val/accuracy {va[-1]} vs {vb[-1]}"
PY
}

# The hash of the weights every rank holds at the end of run $1 (run.log's last check).
weights_hash() { grep -ho 'weights identical on all [0-9]* ranks (hash [0-9a-f]*' "$1"/run.log | tail -1 |
  grep -o '[0-9a-f]\{16\}'; }
