#!/usr/bin/env bash
# MLflow as users run it: a real `mlflow server` (the venv's mlflow, sqlite backend, artifact
# proxy) on localhost, runs logged to it over the REST API, and everything read back through
# MLflow's own Python client: every logged value, the params, the artifacts, FINISHED /
# FAILED / KILLED, a resumed run continuing its own MLflow run, a server that goes away
# mid-run and comes back, and one that stays away (the unsent requests replayed with curl), and
# the server behind HTTPS and a bearer-token gateway (tls_bearer_proxy.py).
# The file store is read through the same client too.
source "$(dirname "$0")/lib.sh"
MLFLOW=$(dirname "$PYTHON")/mlflow
[ -x "$MLFLOW" ] || { echo "FAIL: no mlflow beside $PYTHON (tools/setup.sh installs it in the venv)"; exit 1; }
cd "$TMP"
PORT=$(free_port)
URI=http://127.0.0.1:$PORT
server_pid=""
start_server() {  # log_suffix [extra server arguments]
  local log=$1; shift
  "$MLFLOW" server --backend-store-uri "sqlite:///$TMP/mlflow.db" --artifacts-destination "$TMP/artifacts" \
    --host 127.0.0.1 --port "$PORT" --workers 1 "$@" > "server$log.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 120); do curl -sf "$URI/health" > /dev/null && return 0; sleep 0.5; done
  cat "server$log.log" >&2
  fail "mlflow server did not start"
  exit 1
}
stop_server() { pkill -P "$server_pid" 2> /dev/null || true; kill "$server_pid" 2> /dev/null || true; wait "$server_pid" 2> /dev/null || true; }
trap 'stop_server; rm -rf "$TMP"' EXIT
start_server 1

cat > m.yaml <<YAML
_base_: [$SOURCE_DIR/configs/fashion_mnist_mlp.yaml]
num_epochs: 3
log_every_iters: 4
dataflow: {batch_size: 64, max_train_samples: 1920, max_val_samples: 640}
model: {name: mlp, hidden: [64]}
optimizer: {name: sgd, lr: 0.05, momentum: 0.9}
scheduler: constant
best: {metric: val/accuracy, n_saved: 1}
tracking: {mlflow: {uri: $URI, experiment: served}}
YAML
# Reads run folder $1's MLflow run through MlflowClient and checks it against metrics.jsonl.
check_run() {  # run_dir expected_status
  "$PYTHON" - "$URI" "$1" "$2" <<'PY'
import json, sys, os
from mlflow.tracking import MlflowClient
uri, folder, status = sys.argv[1:4]
page = open(folder + "/mlflow_run").read().strip()
run_id = page.rsplit("/runs/", 1)[1]
c = MlflowClient(uri)
run = c.get_run(run_id)
assert run.info.status == status, f"status {run.info.status}, expected {status}"
assert run.data.tags["runner.run_folder"] == os.path.abspath(folder)
assert run.data.params["optimizer.lr"] == "0.05" and run.data.params["model.name"] == "mlp", run.data.params
rows = [json.loads(l) for l in open(folder + "/metrics.jsonl")]
keys = {k for r in rows for k in r if "/" in k or k == "lr"}
n = 0
for key in sorted(keys):
    want = {r["iteration"]: r[key] for r in rows if key in r}
    got = {m.step: m.value for m in c.get_metric_history(run_id, key)}
    assert got == want, f"{key}: MLflow has {len(got)} points, metrics.jsonl {len(want)}; first differences: " + \
        str([(s, got.get(s), want.get(s)) for s in sorted(set(got) | set(want)) if got.get(s) != want.get(s)][:3])
    n += len(want)
print(f"{run.info.run_name}: {status}, {len(run.data.params)} params, {n} metric values equal metrics.jsonl")
PY
}

echo "== a run logged to the server: every value, params, tags, artifacts, FINISHED"
run_capture a.txt "$RUNNER" m.yaml output_path=runs
expect_success a.txt "run on the server"
A=$(ls -d runs/m/*)
expect_contains "$(cat "$A/mlflow_run")" "$URI/#/experiments/" "mlflow_run holds the run's page"
check_run "$A" FINISHED || fail "run A on the server"
"$PYTHON" - "$URI" "$A" <<'PY' || fail "artifacts through the proxy"
import sys, filecmp, tempfile
from mlflow.tracking import MlflowClient
uri, folder = sys.argv[1:3]
run_id = open(folder + "/mlflow_run").read().strip().rsplit("/runs/", 1)[1]
c = MlflowClient(uri)
paths = {a.path for a in c.list_artifacts(run_id)}
want = {"config.yaml", "model_summary.txt", "metrics.csv", "report.html", "summary.yaml", "model.safetensors", "best"}
assert want <= paths, f"artifacts: {sorted(paths)}"
d = tempfile.mkdtemp()
got = c.download_artifacts(run_id, "model.safetensors", d)
assert filecmp.cmp(got, folder + "/model.safetensors", shallow=False), "model.safetensors differs"
best = [a.path for a in c.list_artifacts(run_id, "best")]
assert any(p.endswith(".safetensors") for p in best), best
print(f"{len(paths)} artifacts, model.safetensors byte-identical after download")
PY

echo "== a crash is FAILED; the resume continues the same MLflow run to FINISHED"
run_capture c.txt "$RUNNER" m.yaml output_path=rc crash_iteration=70 -q
[ "$RC" -eq 1 ] || fail "crash run: exit $RC"
C=$(ls -d rc/m/*)
page=$(cat "$C/mlflow_run")
check_run "$C" FAILED || fail "the crashed run"
run_capture r.txt "$RUNNER" m.yaml output_path=rc resume_from=auto -q
expect_success r.txt "resume"
[ "$(cat "$C/mlflow_run")" = "$page" ] || fail "the resume opened another MLflow run"
# metrics.jsonl drops the redone steps; MLflow keeps both values of a redone step, the later
# one last: compare only the last value per step.
check_resumed_run() {  # run_dir
  "$PYTHON" - "$URI" "$1" <<'PY'

import json, sys
from mlflow.tracking import MlflowClient
uri, folder = sys.argv[1:3]
run_id = open(folder + "/mlflow_run").read().strip().rsplit("/runs/", 1)[1]
c = MlflowClient(uri)
assert c.get_run(run_id).info.status == "FINISHED"
rows = [json.loads(l) for l in open(folder + "/metrics.jsonl")]
want = {r["iteration"]: r["train/batch_loss"] for r in rows if "train/batch_loss" in r}
hist = sorted(c.get_metric_history(run_id, "train/batch_loss"), key=lambda m: (m.step, m.timestamp))
got = {m.step: m.value for m in hist}
assert got == want, "the last value of each step is not metrics.jsonl's"
print(f"one MLflow run across crash and resume: {len(want)} steps, FINISHED")
PY
}
check_resumed_run "$C" || fail "the resumed run on the server"

echo "== SIGTERM ends the run KILLED"
"$RUNNER" m.yaml output_path=sig num_epochs=20 dataflow.max_train_samples=60000 -q > sig.txt 2>&1 &
pid=$!
for _ in $(seq 100); do [ -s sig/m/*/metrics.jsonl ] 2> /dev/null && break; sleep 0.1; done
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 75 ] || fail "SIGTERM: exit $rc, expected 75"
"$PYTHON" -c "
import sys; from mlflow.tracking import MlflowClient
run_id = open('$(ls -d sig/m/*)/mlflow_run').read().strip().rsplit('/runs/', 1)[1]
s = MlflowClient('$URI').get_run(run_id).info.status
assert s == 'KILLED', s" || fail "a run stopped by a signal is KILLED"

echo "== the server goes away mid-run and comes back: training goes on, nothing is lost"
"$RUNNER" m.yaml output_path=away num_epochs=12 dataflow.max_train_samples=12800 threads=1 > away.txt 2>&1 &
pid=$!
for _ in $(seq 200); do [ -s away/m/*/metrics.jsonl ] 2> /dev/null && break; sleep 0.05; done
stop_server
sleep 4
start_server 2
rc=0
wait "$pid" || rc=$?
[ "$rc" -eq 0 ] || { tail -5 away.txt; fail "the run with a server away: exit $rc"; }
[ "$(grep -c 'does not answer' away.txt)" -eq 1 ] || fail "the run log should say once that the server is away"
expect_contains "$(cat away.txt)" "answers again; the buffered metrics are sent" "the log says it is back"
[ ! -e away/m/*/mlflow_unsent.txt ] || fail "nothing should be left unsent"
check_run "$(ls -d away/m/*)" FINISHED || fail "every value reached the server after it came back"

# run_then_stop_server TAG RC WHAT [overrides]: a 4-epoch run into TAG/ in the background; the
# server stops once its first metrics are written; the run must exit RC. Console in TAG.txt.
run_then_stop_server() {
  local tag=$1 want=$2 what=$3 pid rc=0
  shift 3
  "$RUNNER" m.yaml output_path="$tag" num_epochs=4 dataflow.max_train_samples=12800 threads=1 "$@" > "$tag.txt" 2>&1 &
  pid=$!
  for _ in $(seq 200); do [ -s "$tag"/m/*/metrics.jsonl ] 2> /dev/null && break; sleep 0.05; done
  stop_server
  wait "$pid" || rc=$?
  [ "$rc" -eq "$want" ] || { tail -5 "$tag.txt"; fail "$what: exit $rc"; }
}

echo "== the server stays away: the run finishes, the unsent requests are kept and replay with curl"
run_then_stop_server gone 0 "the run with the server gone"
G=$(ls -d gone/m/*)
[ -s "$G/mlflow_unsent.txt" ] || fail "no mlflow_unsent.txt"
expect_contains "$(cat gone.txt)" "did not answer by the end of the run" "the log says what was kept"
start_server 3
# The README's replay command, as written there:
while read -r method path body; do
  curl -sf -X "$method" -H 'Content-Type: application/json' -d "$body" "$URI$path" > /dev/null
done < "$G/mlflow_unsent.txt" || fail "replaying mlflow_unsent.txt"
check_run "$G" FINISHED || fail "after the replay the server has every value and the status"

echo "== the server away when a run fails: the resume sends what that run kept, then continues"
run_then_stop_server kept 1 "the crashing run" crash_iteration=500
K=$(ls -d kept/m/*)
grep -q 'runs/update .*"FAILED"' "$K/mlflow_unsent.txt" || fail "the FAILED status is kept in mlflow_unsent.txt"
start_server 5
run_capture kr.txt "$RUNNER" m.yaml output_path=kept num_epochs=4 dataflow.max_train_samples=12800 threads=1 \
  resume_from=auto
expect_success kr.txt "the resume with requests kept"
expect_contains "$(cat kr.txt)" "request(s) kept in $K/mlflow_unsent.txt by the previous run sent" "the resume sends them"
grep -q "MLflow: \([0-9]*\) of \1 request" kr.txt || fail "not every kept request was sent: $(grep 'request(s) kept' kr.txt)"
[ ! -e "$K/mlflow_unsent.txt" ] || fail "mlflow_unsent.txt should be gone once sent"
check_resumed_run "$K" || fail "the kept requests and the resumed run on the server"

echo "== behind HTTPS and a bearer token: MLFLOW_TRACKING_TOKEN, _SERVER_CERT_PATH, _INSECURE_TLS"
# The same server behind tests/integration/tls_bearer_proxy.py (a token gateway with a
# self-signed certificate for 127.0.0.1); check_run reads the run back from the plain URI.
openssl req -x509 -newkey rsa:2048 -nodes -keyout tls.key -out tls.pem -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 > openssl.log 2>&1 || { cat openssl.log; fail "openssl req"; }
PROXY_PORT=$(free_port)
SURI=https://127.0.0.1:$PROXY_PORT
"$PYTHON" "$SOURCE_DIR/tests/integration/tls_bearer_proxy.py" "$PROXY_PORT" "$URI" tls.pem tls.key runner-token \
  proxy.log > proxy.out 2>&1 &
proxy_pid=$!
trap 'kill "$proxy_pid" 2> /dev/null || true; stop_server; rm -rf "$TMP"' EXIT
proxy_up() { curl -sf --cacert tls.pem "$SURI/health" -H "Authorization: Bearer runner-token" > /dev/null; }
for _ in $(seq 1 50); do proxy_up && break; sleep 0.2; done
proxy_up || { cat proxy.out; fail "the HTTPS gateway did not start"; exit 1; }
tls_error() {  # file what expected [env...]: a one-line error, exit 1
  local f=$1 what=$2 want=$3
  shift 3
  run_capture "$f" env "$@" "$RUNNER" m.yaml output_path=tls num_epochs=1 tracking.mlflow.uri="$SURI"
  [ "$RC" -eq 1 ] || fail "$what: exit $RC"
  expect_contains "$(cat "$f")" "error: MLflow server $SURI: cannot look up experiment 'served': $want" "$what"
  [ "$(grep -c . "$f")" -eq 1 ] || fail "$what: more than one line: $(cat "$f")"
}
tls_error tls1.txt "no CA bundle" "SSL certificate problem: self"  # OpenSSL 3: self-signed, 1.1: self signed
expect_contains "$(cat tls1.txt)" "(the server's certificate could not be verified: set MLFLOW_TRACKING_SERVER_CERT_PATH" "the hint"
tls_error tls2.txt "a CA bundle that is not one" "error setting certificate file: $TMP/tls.key (MLFLOW_TRACKING_SERVER_CERT_PATH must name a readable PEM CA bundle)" \
  MLFLOW_TRACKING_SERVER_CERT_PATH="$TMP/tls.key"
tls_error tls3.txt "no token" "HTTP 401: a bearer token is required" MLFLOW_TRACKING_SERVER_CERT_PATH="$TMP/tls.pem"
run_capture tls4.txt env MLFLOW_TRACKING_SERVER_CERT_PATH="$TMP/tls.pem" MLFLOW_TRACKING_TOKEN=runner-token \
  "$RUNNER" m.yaml output_path=tls4 tracking.mlflow.uri="$SURI"
expect_success tls4.txt "the run over HTTPS with the CA bundle and the token"
T4=$(ls -d tls4/m/*)
expect_contains "$(cat "$T4/mlflow_run")" "$SURI/#/experiments/" "mlflow_run holds the HTTPS page"
check_run "$T4" FINISHED || fail "the run sent over HTTPS with a bearer token"
grep -q "^PUT .*model.safetensors 200$" proxy.log || fail "the artifacts did not go through the proxy: $(tail -3 proxy.log)"
run_capture tls5.txt env MLFLOW_TRACKING_INSECURE_TLS=true MLFLOW_TRACKING_TOKEN=runner-token \
  "$RUNNER" m.yaml output_path=tls5 num_epochs=1 tracking.mlflow.uri="$SURI"
expect_success tls5.txt "the run with MLFLOW_TRACKING_INSECURE_TLS=true and no CA bundle"
echo "proxy: $(grep -c ' 200$' proxy.log) requests with the token answered 200, $(grep -c ' 401$' proxy.log) without it 401"
kill "$proxy_pid" 2> /dev/null || true

echo "== a server that is not there at the start is one line and exit 1"
stop_server
run_capture no.txt "$RUNNER" m.yaml output_path=none num_epochs=1
[ "$RC" -eq 1 ] || fail "no server: exit $RC"
expect_contains "$(cat no.txt)" "error: MLflow server $URI: cannot look up experiment 'served'" "no server at the start"

echo "== without libcurl (runner loads it only for a server): one line that says so, exit 1"
run_capture nocurl.txt env RUNNER_LIBCURL=/nonexistent/libcurl.so.4 "$RUNNER" m.yaml output_path=nocurl num_epochs=1
[ "$RC" -eq 1 ] || fail "no libcurl: exit $RC"
expect_contains "$(cat nocurl.txt)" "error: MLflow server $URI: the tracking server's client needs libcurl, which could not be loaded (/nonexistent/libcurl.so.4" "no libcurl"
[ "$(grep -c . nocurl.txt)" -eq 1 ] || fail "no libcurl: more than one line: $(cat nocurl.txt)"

echo "== a server with authentication: MLFLOW_TRACKING_USERNAME/PASSWORD are sent; without them, one error line"
rm -f "$TMP/mlflow.db"
MLFLOW_AUTH_ADMIN_PASSWORD=runner-test-pass MLFLOW_FLASK_SERVER_SECRET_KEY=runner-test start_server 4 --app-name basic-auth
run_capture noauth.txt "$RUNNER" m.yaml output_path=noauth num_epochs=1
[ "$RC" -eq 1 ] || fail "no credentials: exit $RC"
expect_contains "$(cat noauth.txt)" "cannot look up experiment 'served': HTTP 401: You are not authenticated" "401 said"
export MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=runner-test-pass
run_capture auth.txt "$RUNNER" m.yaml output_path=auth
expect_success auth.txt "run with basic auth"
check_run "$(ls -d auth/m/*)" FINISHED || fail "the run on the server with authentication"
unset MLFLOW_TRACKING_USERNAME MLFLOW_TRACKING_PASSWORD
stop_server

echo "== the file store, read by MLflow's own client (MLFLOW_ALLOW_FILE_STORE=true)"
run_capture f.txt "$RUNNER" m.yaml output_path=fs tracking.mlflow.uri=file:./mlruns
expect_success f.txt "file store run"
MLFLOW_ALLOW_FILE_STORE=true "$PYTHON" - "$(ls -d fs/m/*)" <<'PY' || fail "the file store through MlflowClient"
import json, sys
from mlflow.tracking import MlflowClient
folder = sys.argv[1]
c = MlflowClient("file:./mlruns")
exp = c.get_experiment_by_name("served")
(run,) = c.search_runs([exp.experiment_id])
assert run.info.status == "FINISHED", run.info.status
rows = [json.loads(l) for l in open(folder + "/metrics.jsonl")]
want = {r["iteration"]: r["val/accuracy"] for r in rows if "val/accuracy" in r}
got = {m.step: m.value for m in c.get_metric_history(run.info.run_id, "val/accuracy")}
assert got == want, (got, want)
assert run.data.params["optimizer.lr"] == "0.05"
print(f"file store: FINISHED, val/accuracy {len(want)} points equal, {len(run.data.params)} params")
PY
# `mlflow ui --backend-store-uri ./mlruns` is this server; the README's command, over its REST API:
MLFLOW_ALLOW_FILE_STORE=true "$MLFLOW" ui --backend-store-uri ./mlruns --host 127.0.0.1 --port "$PORT" \
  > ui.log 2>&1 &
server_pid=$!
for _ in $(seq 1 120); do curl -sf "$URI/health" > /dev/null && break; sleep 0.5; done
found=$(curl -sf "$URI/api/2.0/mlflow/experiments/get-by-name?experiment_name=served" || true)
expect_contains "$found" '"name": "served"' "mlflow ui serves the file store's experiment"

finish
