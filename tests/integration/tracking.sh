#!/usr/bin/env bash
# What the user sees of a run: TensorBoard event files (parsed back record by record,
# CRCs checked, by a reader independent of the writer), the MLflow file store (checked
# file by file), metrics.csv, report.html rendered in headless Chromium, `runner
# compare` on two real runs, the resumed run's TensorBoard/MLflow records, the console.
source "$(dirname "$0")/lib.sh"
cd "$TMP"
cat > t.yaml <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_mlp.yaml]
num_epochs: 3
log_every_iters: 4
dataflow: {batch_size: 64, max_train_samples: 1920, max_val_samples: 640}
model: {name: mlp, hidden: [64]}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
scheduler: {name: cosine, warmup: 8}
best: {metric: val/accuracy, n_saved: 1}
tracking: {mlflow: {uri: file:./mlruns, experiment: fmnist-tracking}}
YAML

echo "== two short runs into one MLflow experiment"
run_capture a.txt "$RUNNER" t.yaml output_path=runs
expect_success a.txt "run A"
run_capture b.txt "$RUNNER" t.yaml output_path=runs optimizer.lr=0.01 'model.hidden=[32]' 'tracking.mlflow.run_name=small lr'
expect_success b.txt "run B"
A=$(ls -d runs/t/* | head -1)
B=$(ls -d runs/t/* | tail -1)
[ "$A" != "$B" ] || fail "expected two run folders"
for f in metrics.jsonl metrics.csv report.html summary.yaml mlflow_run tb; do [ -e "$A/$f" ] || fail "missing $A/$f"; done
expect_contains "$(cat a.txt)" "best: val/accuracy" "the final summary shows the best metrics"
expect_contains "$(cat a.txt)" "samples/s" "the final summary shows the throughput"
expect_contains "$(cat a.txt)" "run folder: $A (report.html, metrics.csv, tb/; MLflow run $TMP/mlruns/" "the summary says where everything is"

echo "== TensorBoard: records, CRCs, tags, steps and values"
[ "$(ls "$A"/tb/events.out.tfevents.* | wc -l)" -eq 1 ] || fail "one event file per run"
"$PYTHON" "$SOURCE_DIR/tests/integration/read_tfevents.py" "$A"/tb/events.out.tfevents.* > a_events.jsonl || fail "event file unreadable"
"$PYTHON" - a_events.jsonl "$A/metrics.jsonl" <<'PY' || fail "TensorBoard contents"
import json, struct, sys
events = [json.loads(l) for l in open(sys.argv[1])]
rows = [json.loads(l) for l in open(sys.argv[2])]
assert events[0].get("file_version") == "brain.Event:2", events[0]
scalars = {}
texts, hp = {}, {}
for e in events:
    for v in e.get("values", []):
        if "simple_value" in v:
            scalars.setdefault(v["tag"], []).append((e["step"], v["simple_value"]))
        elif v.get("plugin") == "text":
            texts[v["tag"]] = v["tensor"]["string_val"][0]
        elif v.get("plugin") == "hparams":
            hp.update(v["hparams"])
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
for key in ["train/batch_loss", "lr", "val/accuracy", "val/loss", "val/top5"]:
    want = [(r["iteration"], f32(r[key])) for r in rows if key in r]
    assert want, key
    assert scalars.get(key) == want, (key, scalars.get(key), want)
ips = scalars.get("train/images_per_s", [])
assert len(ips) == len(scalars["train/batch_loss"]) and all(v > 0 for _, v in ips), ips
assert "num_epochs: 3" in texts["config"] and "Total params" in texts["model_summary"], texts.keys()
assert hp["session_start_info"]["optimizer.lr"] == 0.05, hp["session_start_info"]["optimizer.lr"]
assert hp["session_start_info"]["model.name"] == "mlp"
assert "val/accuracy" in hp["experiment"]["metrics"] and "optimizer.lr" in hp["experiment"]["hparams"]
assert hp["session_end_info"] == 1, "session end: success"
print(f"{len(events)} events, {sum(map(len, scalars.values()))} scalars, tags {sorted(scalars)}")
PY
echo "== TensorBoard itself (the tensorboard package's reader) reads every scalar, the text and the hparams"
"$PYTHON" - "$A/tb" "$A/metrics.jsonl" <<'PY' || fail "the tensorboard package reads the event file differently"
import json, struct, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0, "tensors": 0})
acc.Reload()
rows = [json.loads(l) for l in open(sys.argv[2])]
f32 = lambda x: struct.unpack("<f", struct.pack("<f", x))[0]
keys = sorted({k for r in rows for k in r} - {"iteration", "epoch"})
for key in keys:  # every scalar metrics.jsonl has, at the same steps, as float32
    want = [(r["iteration"], f32(r[key])) for r in rows if key in r]
    got = [(e.step, e.value) for e in acc.Scalars(key)]
    assert got == want, (key, got[:3], want[:3])
text = lambda tag: acc.Tensors(tag)[0].tensor_proto.string_val[0].decode()
assert "num_epochs: 3" in text("config") and "Total params" in text("model_summary"), acc.Tags()["tensors"]
hp = lambda tag: plugin_data_pb2.HParamsPluginData.FromString(acc.SummaryMetadata(tag).plugin_data.content)
start, exp = hp("_hparams_/session_start_info").session_start_info, hp("_hparams_/experiment").experiment
end = hp("_hparams_/session_end_info").session_end_info
assert start.hparams["optimizer.lr"].number_value == 0.05 and start.hparams["model.name"].string_value == "mlp"
assert "val/accuracy" in [m.name.tag for m in exp.metric_infos] and "optimizer.lr" in [h.name for h in exp.hparam_infos]
assert end.status == api_pb2.Status.Value("STATUS_SUCCESS"), end
print(f"tensorboard {__import__('tensorboard').__version__}: {len(keys)} scalar tags equal metrics.jsonl, "
      f"text and hparams (lr {start.hparams['optimizer.lr'].number_value}, end {end.status})")
PY
head -c 2000 "$A"/tb/events.out.tfevents.* > cut.tfevents
"$PYTHON" "$SOURCE_DIR/tests/integration/read_tfevents.py" cut.tfevents > /dev/null 2>&1 && fail "the reader accepts a truncated file"

echo "== MLflow file store, file by file"
"$PYTHON" - "$A" "$B" <<'PY' || fail "MLflow layout"
import json, os, re, sys
def meta(path):  # the flat YAML MLflow writes: key: value per line
    out = {}
    for line in open(path):
        k, _, v = line.rstrip("\n").partition(": ")
        out[k] = v
    return out
unq = lambda v: v[1:-1].replace("''", "'") if v.startswith("'") else v
assert meta("mlruns/0/meta.yaml")["name"] == "'Default'", "a new store has MLflow's Default experiment"
assert os.path.isdir("mlruns/.trash")
exps = [d for d in os.listdir("mlruns") if d not in ("0", ".trash", ".runner.lock")]
assert len(exps) == 1, f"one experiment for both runs, got {exps}"
exp = exps[0]
m = meta(f"mlruns/{exp}/meta.yaml")
assert list(m) == sorted(m) == ["artifact_location", "creation_time", "experiment_id", "last_update_time", "lifecycle_stage", "name"], m
assert unq(m["experiment_id"]) == exp and m["experiment_id"].startswith("'") and unq(m["name"]) == "fmnist-tracking"
assert unq(m["artifact_location"]) == "file://" + os.path.abspath(f"mlruns/{exp}"), m
runs = sorted(d for d in os.listdir(f"mlruns/{exp}") if d != "meta.yaml")
assert len(runs) == 2, runs
for folder, name in [(sys.argv[1], os.path.basename(sys.argv[1])), (sys.argv[2], "small lr")]:
    run = open(f"{folder}/mlflow_run").read().strip()
    rid = os.path.basename(run)
    assert os.path.dirname(run) == os.path.abspath(f"mlruns/{exp}") and re.fullmatch("[0-9a-f]{32}", rid), run
    r = meta(f"{run}/meta.yaml")
    assert list(r) == sorted(r), r
    assert set(r) == {"artifact_uri", "end_time", "entry_point_name", "experiment_id", "lifecycle_stage", "run_id", "run_name",
                      "run_uuid", "source_name", "source_type", "source_version", "start_time", "status", "tags", "user_id"}, r
    assert unq(r["run_id"]) == unq(r["run_uuid"]) == rid and unq(r["experiment_id"]) == exp
    assert r["status"] == "3" and int(r["end_time"]) >= int(r["start_time"]) > 1.6e12, r  # FINISHED, times in ms
    assert unq(r["artifact_uri"]) == f"file://{run}/artifacts" and unq(r["run_name"]) == name, r
    assert open(f"{run}/tags/mlflow.runName").read() == name, "tags carry no trailing newline"
    assert open(f"{run}/tags/mlflow.source.type").read() == "LOCAL"
    params = {os.path.relpath(os.path.join(d, f), f"{run}/params"): open(os.path.join(d, f)).read()
              for d, _, fs in os.walk(f"{run}/params") for f in fs}
    assert params["optimizer.lr"] == ("0.05" if name != "small lr" else "0.01"), params["optimizer.lr"]
    assert params["dataflow.batch_size"] == "64" and params["model.hidden"] in ("[64]", "[32]"), params
    rows = [json.loads(l) for l in open(f"{folder}/metrics.jsonl")]
    for key in ["train/batch_loss", "lr", "val/accuracy", "val/loss", "val/top5"]:
        lines = [l.split(" ") for l in open(f"{run}/metrics/{key}").read().splitlines()]
        assert all(len(x) == 3 and int(x[0]) > 1.6e12 for x in lines), lines[:2]
        got = [(int(x[2]), float(x[1])) for x in lines]
        want = [(r["iteration"], r[key]) for r in rows if key in r]
        assert got == want, (key, got[:3], want[:3])
    assert os.path.exists(f"{run}/metrics/train/images_per_s")
    arts = sorted(os.path.relpath(os.path.join(d, f), f"{run}/artifacts") for d, _, fs in os.walk(f"{run}/artifacts") for f in fs)
    for a in ["config.yaml", "metrics.csv", "model_summary.txt", "report.html", "summary.yaml", "model.safetensors"]:
        assert a in arts, (a, arts)
        assert open(f"{run}/artifacts/{a}", "rb").read() == open(f"{folder}/{a}", "rb").read(), a
    best = [a for a in arts if a.startswith("best/")]  # the .pt and the .safetensors of each best model
    assert best == sorted("best/" + f for f in os.listdir(f"{folder}/best")) and len(best) == 2, (best, arts)
print("experiment", exp, "runs", runs)
PY

echo "== metrics.csv holds what metrics.jsonl holds"
"$PYTHON" - "$A" <<'PY' || fail "metrics.csv"
import csv, json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
table = list(csv.DictReader(open(sys.argv[1] + "/metrics.csv")))
assert len(table) == len(rows) > 0
assert list(table[0])[:4] == ["iteration", "epoch", "train/batch_loss", "lr"], list(table[0])
for r, t in zip(rows, table):
    for k, v in r.items():
        assert float(t[k]) == v, (k, t[k], v)
    assert all(t[k] == "" for k in t if k not in r)
PY

echo "== report.html: self-contained, rendered in headless Chromium"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || fail "chromium is not installed (tools/setup.sh installs it)"
grep -qiE '<script|src=|href=|@import|url\(' "$A/report.html" && fail "report.html refers to outside resources"
grep -q 'http-equiv="refresh"' "$A/report.html" && fail "a finished run's report still reloads itself"
if [ -n "$CHROMIUM" ]; then
  chrome() { timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$TMP/chrome" "$@" 2> chrome.err; }
  chrome --dump-dom "file://$TMP/$A/report.html" > dom.html || fail "chromium could not render report.html"
  "$PYTHON" - dom.html <<'PY' || fail "rendered report"
import re, sys
dom = open(sys.argv[1]).read()
charts = re.findall(r'<svg[^>]*class="chart"[^>]*aria-label="([^"]*)"', dom)
assert charts[:4] == ["Loss", "Validation metrics", "Learning rate", "Throughput (samples/s)"], charts
curves = re.findall(r'<path class="curve" data-label="([^"]*)" d="M([0-9., LM-]+)"', dom)
labels = [c[0] for c in curves]
for want in ["train/batch_loss", "val/loss", "val/accuracy", "val/top5", "lr", "samples/s"]:
    assert want in labels, (want, labels)
assert all(len(d.split("L")) >= 3 for _, d in curves), "every curve has at least 3 points"
for text in ["val/accuracy", "samples/s (training)", "data wait", "Total params", "num_epochs: 3", "finished"]:
    assert text in dom, text
print(len(charts), "charts,", len(curves), "curves")
PY
  chrome --window-size=1280,2400 --screenshot="$TMP/report.png" "file://$TMP/$A/report.html" ||
    fail "chromium could not screenshot report.html"
  [ "$(stat -c %s report.png 2> /dev/null || echo 0)" -gt 40000 ] || fail "the screenshot is blank or missing"
fi

echo "== runner compare"
run_capture cmp.txt "$RUNNER" compare "$A" "$B" -o cmp.html
expect_success cmp.txt "compare"
cat cmp.txt
expect_contains "$(cat cmp.txt)" "optimizer.lr" "compare lists the differing lr"
expect_contains "$(grep 'optimizer.lr' cmp.txt)" "0.05" "compare shows run A's lr"
expect_contains "$(grep 'optimizer.lr' cmp.txt)" "0.01" "compare shows run B's lr"
expect_contains "$(cat cmp.txt)" "model.hidden" "compare lists the differing model"
expect_contains "$(cat cmp.txt)" "val/accuracy final" "compare shows final metrics"
expect_contains "$(cat cmp.txt)" "val/accuracy best" "compare shows best metrics"
grep -q "^seed " cmp.txt && fail "compare shows a key that does not differ"
if [ -n "$CHROMIUM" ]; then
  chrome --dump-dom "file://$TMP/cmp.html" > cmpdom.html || fail "chromium could not render compare.html"
  [ "$(grep -o '<path class="curve" data-label="#1"' cmpdom.html | wc -l)" -ge 4 ] || fail "compare.html: run 1's curves"
  [ "$(grep -o '<path class="curve" data-label="#2"' cmpdom.html | wc -l)" -ge 4 ] || fail "compare.html: run 2's curves"
fi
run_capture cmpbad.txt "$RUNNER" compare "$A" "$TMP/nothing"
[ "$RC" -eq 2 ] || fail "compare with a missing folder: exit $RC"
expect_contains "$(cat cmpbad.txt)" "error: $TMP/nothing: not a folder (expected a run folder)" "compare: bad folder"
run_capture cmpnotrun.txt "$RUNNER" compare "$A" "$A/tb"
[ "$RC" -eq 2 ] || fail "compare with a folder that is not a run: exit $RC"
expect_contains "$(cat cmpnotrun.txt)" "error: $A/tb: not a run folder (it has no config.yaml)" "compare: not a run folder"
run_capture cmpone.txt "$RUNNER" compare "$A"
[ "$RC" -eq 2 ] || fail "compare with one folder: exit $RC"
expect_contains "$(cat cmpone.txt)" "usage: runner compare RUN_DIR RUN_DIR" "compare: one folder"

echo "== a crash, then resume: MLflow and TensorBoard continue without duplicate steps"
run_capture c.txt "$RUNNER" t.yaml output_path=rc crash_iteration=70 -q
[ "$RC" -eq 1 ] || fail "crash run: exit $RC"
C=$(ls -d rc/t/*)
grep -q '^status: 4$' "$(cat "$C/mlflow_run")/meta.yaml" || fail "a failed run is FAILED (4) in MLflow"
grep -q 'status-failed' "$C/report.html" || fail "the report of a failed run says so"
"$PYTHON" "$SOURCE_DIR/tests/integration/read_tfevents.py" "$(ls "$C"/tb/events.out.tfevents.* | head -1)" > first.jsonl ||
  fail "the crashed run's event file is unreadable"
grep -q '"session_end_info": 2' first.jsonl || fail "the crashed run's hparams session ends STATUS_FAILURE"
run_capture r.txt "$RUNNER" t.yaml output_path=rc resume_from=auto -q
expect_success r.txt "resume"
[ "$(ls -d rc/t/* | wc -l)" -eq 1 ] || fail "resume made a new run folder"
[ "$(ls "$C"/tb/events.out.tfevents.* | wc -l)" -eq 2 ] || fail "the resumed run adds a second event file"
grep -q '^status: 3$' "$(cat "$C/mlflow_run")/meta.yaml" || fail "the resumed run ends FINISHED in MLflow"
"$PYTHON" - "$(cat "$C/mlflow_run")" "$C/metrics.jsonl" <<'PY' || fail "MLflow after resume"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[2])]
steps = [int(l.split()[2]) for l in open(sys.argv[1] + "/metrics/train/batch_loss")]
assert steps == [r["iteration"] for r in rows if "train/batch_loss" in r], steps
assert steps == sorted(set(steps)), "duplicate steps after resume"
PY
second=$(ls "$C"/tb/events.out.tfevents.* | tail -1)
"$PYTHON" "$SOURCE_DIR/tests/integration/read_tfevents.py" "$second" > second.jsonl || fail "second event file unreadable"
# the last checkpoint before the crash is the epoch-2 one, at iteration 60
sed -n 2p second.jsonl | grep -q '"step": 61, .*"session_log": 1' ||
  fail "the resumed event file starts with SessionLog START (TensorBoard drops the redone steps)"

echo "== a live report while training; SIGTERM ends the MLflow run KILLED and the report stopped"
"$RUNNER" t.yaml output_path=sig num_epochs=20 dataflow.max_train_samples=60000 -q > sig.txt 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s sig/t/*/metrics.jsonl ] 2> /dev/null && break; sleep 0.1; done
S=$(ls -d sig/t/*)
grep -q 'http-equiv="refresh" content="30"' "$S/report.html" && grep -q 'status-running' "$S/report.html" ||
  fail "a running run's report (written at the start) reloads itself and says running"
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 75 ] || fail "SIGTERM: exit $rc, expected 75"
grep -q '^status: 5$' "$(cat "$S/mlflow_run")/meta.yaml" || fail "a run stopped by a signal is KILLED (5) in MLflow"
grep -q 'status-stopped' "$S/report.html" || fail "the report of a stopped run says so"
grep -q 'http-equiv="refresh"' "$S/report.html" && fail "a stopped run's report still reloads itself"

echo "== console: a progress bar on a TTY, lines otherwise"
if command -v script > /dev/null; then
  script -qec "$RUNNER t.yaml output_path=tty num_epochs=1 tracking.mlflow=null" /dev/null > tty.txt 2>&1 ||
    fail "run under a pty"
  grep -q $'\r\033\[Kepoch 1/1 \[' tty.txt || fail "no progress bar on a TTY"
  grep -q 'it/s ETA' tty.txt || fail "the progress bar shows it/s and ETA"
fi
grep -q $'\r' a.txt && fail "progress bar drawn without a TTY"
expect_contains "$(cat a.txt)" "epoch 1/3 iter 4/30 | loss" "one line per log_every_iters without a TTY"
run_capture q.txt "$RUNNER" t.yaml output_path=q num_epochs=1 tracking.mlflow=null tracking.tensorboard=false tracking.report=false -q
expect_success q.txt "quiet run"
[ ! -s q.txt ] || fail "--quiet prints nothing on success: $(head -3 q.txt)"
Q=$(ls -d q/t/*)
[ ! -e "$Q/tb" ] && [ ! -e "$Q/report.html" ] && [ -s "$Q/metrics.csv" ] || fail "tracking.tensorboard/report=false"
grep -q "epoch 1/1 validation" "$Q/run.log" || fail "run.log keeps the info lines under --quiet"
finish
