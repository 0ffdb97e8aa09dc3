#!/usr/bin/env bash
# The device path on a machine without a GPU: device: auto picks the CPU and says so; the
# steady-state step reads nothing back from the device (summary.yaml host_reads: one read
# per log line and per checkpoint, none per step); a loss that goes non-finite fails the run
# at the next read, before any checkpoint holds it; checkpoints say which device wrote them
# (no CUDA RNG from a CPU run). device: cuda without a GPU is refused in bad_configs.sh.
source "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > dev.yaml <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_mlp.yaml]
num_epochs: 2
log_every_iters: 25
checkpoint_every: 60
dataflow: {batch_size: 64, max_train_samples: 6400, max_val_samples: 500}
model: {name: mlp, hidden: [256, 256]}
YAML

echo "== device: auto on a machine without a GPU"
run_capture out.txt "$RUNNER" dev.yaml output_path=runs
[ "$RC" -eq 0 ] || fail "training failed: $(tail -5 out.txt)"
expect_contains "$(cat out.txt)" "device: cpu | threads:" "banner"
expect_contains "$(cat out.txt)" "device: cpu | peak memory" "summary line"
run=$(ls -d runs/dev/*)
grep -q '^device: cpu$' "$run/model_summary.txt" || fail "model_summary.txt does not name the device"
reads=$(sed -n 's/^host_reads: //p' "$run/summary.yaml")
peak=$(sed -n 's/^peak_memory_mb: //p' "$run/summary.yaml")
# 200 iterations: 8 log lines (every 25) read the loss; so do the checkpoints at 60, 120 and
# 180; the epoch-end checkpoints at 100 and 200 find it already read by that iteration's log line.
echo "host reads: $reads for 200 iterations (8 log lines, 5 checkpoints); peak memory $peak MiB"
[ "$reads" = 11 ] || fail "host_reads $reads: expected 11 (8 log lines + 3 checkpoints between them), none per step"
awk -v p="$peak" 'BEGIN { exit !(p > 0) }' || fail "peak_memory_mb '$peak'"
grep -q 'peak memory' "$run/report.html" || fail "report.html does not show the peak memory"

echo "== the loop's time by part adds up to the training time"
expect_contains "$(cat out.txt)" "step time: data_wait " "summary: step time by part"
python3 - "$run/summary.yaml" <<'PY' || fail "step time breakdown (summary.yaml)"
import sys
v = {}
for line in open(sys.argv[1]):
    k, _, rest = line.partition(":")
    if k.startswith(("step_time", "train_seconds")):
        v[k] = float(rest)
parts = ["data_wait", "forward", "backward", "comm_wait", "optimizer", "host_reads", "handlers"]
vals = [v["step_time_%s_s" % p] for p in parts]
total, train = v["step_time_s"], v["train_seconds"]
print("parts:", dict(zip(parts, vals)), "sum %.3f s, training %.3f s" % (total, train))
assert all(x >= 0 for x in vals), "a negative part"
assert vals[1] > 0 and vals[2] > 0 and vals[4] > 0, "forward, backward and optimizer must take time"
assert abs(sum(vals) - total) < 0.01, "the parts do not sum to step_time_s"
assert abs(total - train) <= 0.05 * train, "parts %.3f s against %.3f s of training (more than 5%% apart)" % (total, train)
PY

echo "== the time outside the loop: each validation's, their sum, the rest"
python3 - "$run/summary.yaml" out.txt <<'PY' || fail "validation time (summary.yaml, the validation lines, the training: line)"
import re, sys
v = {k: float(r) for k, _, r in (l.partition(": ") for l in open(sys.argv[1])) if k.endswith("_seconds")}
out = open(sys.argv[2]).read()
each = [float(x) / (1000 if unit == "ms" else 1) for x, unit in re.findall(r"validation: .* \(([0-9.]+) (m?s)\)\n", out)]
line = re.search(r"total ([0-9.]+) s \(validation ([0-9.]+) s, the rest ([0-9.]+) s\)", out)
print("validations", each, "summary", v, "line", line and line.groups())
assert len(each) == 2 and all(x >= 0 for x in each), "expected 2 timed validation lines"
assert abs(sum(each) - v["validation_seconds"]) <= 0.006 * len(each), "the validations do not add up to validation_seconds"
total, val, rest = map(float, line.groups())
assert abs(val - v["validation_seconds"]) <= 0.05, "the training: line's validation time is not summary.yaml's"
assert abs(v["train_seconds"] + val + rest - total) <= 0.15, "training + validation + the rest is not the total"
assert v["train_seconds"] + v["validation_seconds"] <= v["wall_seconds"], "training and validation exceed the run's wall time"
PY

"$PYTHON" - "$run/report.html" "$run/summary.yaml" <<'PY' || fail "report.html: the stacked bar of the step-time parts"
import re, sys
html = open(sys.argv[1]).read()
summary = dict(l.split(": ", 1) for l in open(sys.argv[2]) if ": " in l)
bar = re.search(r'<svg[^>]*class="chart stacked".*?</svg>', html, re.S)
assert bar, "no stacked bar in report.html"
parts = re.findall(r'<rect class="part" data-label="([a-z_]+)" x="([0-9.]+)" y="[0-9]+" width="([0-9.]+)"', bar.group(0))
names = [p[0] for p in parts]
assert names == ["data_wait", "forward", "backward", "comm_wait", "optimizer", "host_reads", "handlers"], names
widths = {n: float(w) for n, _, w in parts}
total = sum(float(summary["step_time_%s_s" % n]) for n in names)
for n in names:  # each segment's width is its share of the bar (820 px)
    assert abs(widths[n] / 820 - float(summary["step_time_%s_s" % n]) / total) < 0.01, (n, widths[n])
print("report.html stacked bar:", {n: round(widths[n] / 8.2, 1) for n in names}, "% of the loop")
PY

echo "== malloc keeps freed memory: no page fault storm per step (RUNNER_MALLOC=system: glibc's defaults)"
expect_contains "$(cat out.txt)" "malloc: glibc, freed memory kept" "banner names the allocator policy"
"$PYTHON" - "$RUNNER" "$SOURCE_DIR/configs/fashion_mnist_resnet8.yaml" <<'PY' || fail "minor page faults"
import os, resource, subprocess, sys
def faults(extra):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt
    subprocess.run([sys.argv[1], sys.argv[2], "output_path=flt", "num_epochs=1", "dataflow.max_train_samples=6400",
                    "dataflow.max_val_samples=500", "-q"], env=dict(os.environ, **extra), check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt - before
kept, system = faults({}), faults({"RUNNER_MALLOC": "system"})
print("minor page faults, 50 resnet8 iterations: %d kept, %d with glibc's defaults" % (kept, system))
assert kept * 2 < system, "keeping freed memory should at least halve the page faults"
PY

echo "== checkpoints name the device that wrote them"
ckpt="$run/checkpoints/$(cat "$run/checkpoints/latest")"
grep -aq '^device: cpu$' "$ckpt" || fail "$ckpt: no 'device: cpu' in its metadata"
! grep -aq 'cuda_rng' "$ckpt" || fail "$ckpt: a CPU run saved a CUDA RNG state"

echo "== a non-finite loss fails the run at the next read, before a checkpoint keeps it"
run_capture nan.txt "$RUNNER" dev.yaml output_path=nan optimizer.lr=1e12 log_every_iters=1000 checkpoint_every=30
[ "$RC" -eq 1 ] || fail "lr 1e12: exit $RC, expected 1"
expect_contains "$(cat nan.txt)" "train/batch_loss is not finite" "nan message"
expect_contains "$(cat nan.txt)" "in iterations 1..30 (epoch 1); lower the learning rate or check the data" "nan range"
nrun=$(ls -d nan/dev/*)
[ ! -e "$nrun/checkpoints/latest" ] || fail "a checkpoint was written after the loss went non-finite"
echo "device: OK"
