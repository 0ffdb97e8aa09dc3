#!/usr/bin/env bash
# The bad-input corpus: each case must exit with the given code, print exactly the
# expected single line on stderr (no stack trace), and leave no run folder behind.
source "$(dirname "$0")/lib.sh"
cd "$SOURCE_DIR/tests/fixtures/bad_configs"
BUILTIN="$BUILD_DIR/lib/runner/plugins"

check() {  # exit_code expected_stderr args...
  local want_rc=$1 want=$2; shift 2
  local rc=0
  "$RUNNER" "$@" output_path="$TMP/runs" > "$TMP/out" 2> "$TMP/err" || rc=$?
  local got; got=$(cat "$TMP/err")
  [ "$rc" -eq "$want_rc" ] || fail "runner $*: exit $rc, expected $want_rc (stderr: $got)"
  [ "$got" = "$want" ] || fail "runner $*:
   expected: $want
   got:      $got"
  [ ! -e "$TMP/runs" ] || { fail "runner $*: left a run folder"; rm -rf "$TMP/runs"; }
}

check 2 "error: unknown_key.yaml:4:3: optimizer.lrr: unknown key for optimizer 'sgd'; did you mean 'lr'? (known keys: lr, momentum, dampening, nesterov, weight_decay, fused, name, no_decay)" unknown_key.yaml
check 2 "error: unknown_top_key.yaml:2:1: num_epoch: unknown key for the config; did you mean 'num_epochs'? (known keys: seed, num_epochs, max_time, validate_every, log_every_iters, output_path, threads, plugins, checkpoint_every, n_saved_checkpoints, resume_from, resume_allow_changes, device, pin_memory, tf32, deterministic, amp, channels_last, fused_kernels, grad_clip_norm, grad_accumulation_steps, cuda_graph, crash_iteration, crash_rank, crash_mode, dataflow, model, optimizer, criterion, scheduler, metrics, handlers, best, early_stopping, ema, profile, dist, tracking)" unknown_top_key.yaml
check 2 "error: wrong_type.yaml:2:13: num_epochs: expected int (number of training epochs), found 'three'" wrong_type.yaml
check 2 "error: negative_lr.yaml:2:28: optimizer.lr: must be >= 0 (learning rate (the scheduler's base value)), found -0.1" negative_lr.yaml
check 2 "error: zero_epochs.yaml:2:13: num_epochs: must be >= 1 (number of training epochs), found 0" zero_epochs.yaml
check 2 "error: zero_batch.yaml:2:24: dataflow.batch_size: must be >= 1 (global training batch, split across ranks), found 0" zero_batch.yaml
check 2 "error: missing_required.yaml:5:12: optimizer.lr: required key is missing for optimizer 'sgd' (float: learning rate (the scheduler's base value))" missing_required.yaml
check 2 "error: missing_component.yaml: model: required key is missing (a model block such as \`model: {name: gpt|mlp|resnet101|resnet18|resnet20|resnet34|resnet50|resnet56|resnet8|resnet9|unet, ...}\`)" missing_component.yaml
check 2 "error: duplicate_key.yaml:3:1: seed: duplicate key (first set at line 2)" duplicate_key.yaml
check 2 "error: empty.yaml: config file is empty (expected a map of config keys)" empty.yaml
check 2 "error: not_yaml.yaml:2:6: not valid YAML: end of sequence flow not found" not_yaml.yaml
check 2 "error: not_a_map.yaml:1:1: expected a map of config keys at the top level, found a list" not_a_map.yaml
check 2 "error: unknown_component.yaml:2:8: model.name: unknown model 'resnet500'; did you mean 'resnet50'? (known: gpt, mlp, resnet101, resnet18, resnet20, resnet34, resnet50, resnet56, resnet8, resnet9, unet)" unknown_component.yaml
check 2 "error: cycle_b.yaml:1:9: _base_: inheritance cycle: 'cycle_a.yaml' includes itself (through $PWD/cycle_a.yaml -> $PWD/cycle_b.yaml -> $PWD/cycle_a.yaml)" cycle_a.yaml
check 2 "error: missing_base.yaml:1:21: _base_: cannot read config file 'no_such_base.yaml' (no such file or not readable)" missing_base.yaml
check 2 "error: nesterov_no_momentum.yaml:2:58: optimizer.nesterov: needs momentum > 0 and dampening 0" nesterov_no_momentum.yaml
check 2 "error: bad_milestones.yaml:4:15: scheduler.milestones: expected a number of iterations (e.g. 500) or of epochs (e.g. 2ep), got '1epoch'" bad_milestones.yaml
check 2 "error: list_expected.yaml:2:28: model.hidden: expected list (sizes of the hidden layers), found '512'" list_expected.yaml
check 2 "error: missing_data_root.yaml:2:39: dataflow.root: folder '/nonexistent/fashion' does not exist" missing_data_root.yaml
check 2 "error: component_as_list.yaml:2:12: criterion: expected a component name or a map with \`name\`, found a list" component_as_list.yaml
check 2 "error: no_such.yaml: cannot read config file (no such file or not readable)" no_such.yaml
check 2 "error: command line 'optimizer.lr=fast': optimizer.lr: expected a number (learning rate (the scheduler's base value)), found 'fast'" good.yaml optimizer.lr=fast
check 2 "error: command line 'num_epochs': expected an override of the form key.path=value (+key=value adds a key, ~key removes one)" good.yaml num_epochs
check 2 "error: command line 'seed=[1,': value is not valid YAML: end of sequence flow not found" good.yaml --params "seed=[1,"
check 2 "error: unrecognised option '--paramz'; did you mean '--params'? (see runner --help)" good.yaml --paramz x
check 2 "error: unknown command 'plugin'; did you mean 'plugins'? (commands: run, plugins, describe, print-config, new-plugin, compare, sample, eval, predict, version, help; or give a config file path)" plugin

rc=0; "$RUNNER" 2> "$TMP/err" > /dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "no arguments: exit $rc, expected 2"
[ "$(cat "$TMP/err")" = "error: no config given: usage: runner CONFIG [key.path=value ...] (see runner --help)" ] || fail "no arguments: $(cat "$TMP/err")"

# Plugin faults, named by library.
FP="$FIXTURE_PLUGINS"
check 2 "error: duplicate component optimizer/sgd: defined in $BUILTIN/librunner_optim.so and in $FP/dup/libfixture_dup_sgd.so" good.yaml --plugin-path "$FP/dup"
check 2 "error: plugin $FP/bad_api/libfixture_bad_api.so (from --plugin-path): built for plugin API version 999, this runner has version 4; rebuild the plugin against this runner's SDK" good.yaml --plugin-path "$FP/bad_api"
check 2 "error: plugin $FP/old_api/libfixture_old_api.so (from --plugin-path): built for plugin API version 3, this runner has version 4; rebuild the plugin against this runner's SDK" good.yaml --plugin-path "$FP/old_api"
check 2 "error: command line 'model=exploding': model: model 'exploding' (plugin $FP/throwing/libfixture_throwing.so) failed to build: boom: out of cheese" good.yaml model=exploding --plugin-path "$FP/throwing"
check 2 "error: command line 'model=picky': model.depth: must be even, got 3 (the default value)" good.yaml model=picky --plugin-path "$FP/throwing"
check 2 "error: --plugin-path: plugin path '/nonexistent/plugins' does not exist" good.yaml --plugin-path /nonexistent/plugins
# the dist: block
check 2 "error: command line 'dist.backend=ucc': dist.backend: expected one of auto, mpi, gloo, nccl, found 'ucc'; did you mean 'nccl'?" good.yaml dist.backend=ucc
check 2 "error: command line 'dist.backend=gloo': dist.backend: gloo joins torchrun's store and this job was not started by torchrun; use mpi or auto (or launch with torchrun)" good.yaml dist.backend=gloo
# dist.backend: nccl and device: cuda, by what this build and machine have
if "$RUNNER" version | grep -q "dist backends: gloo, mpi, nccl"; then
  check 2 "error: command line 'dist.backend=nccl': dist.backend: nccl all-reduces CUDA tensors and this run is on the CPU; use mpi or auto" good.yaml dist.backend=nccl device=cpu
else
  check 2 "error: command line 'dist.backend=nccl': dist.backend: 'nccl' is not in this build (it has: gloo, mpi; nccl needs LibTorch with CUDA and NCCL at build time)" good.yaml dist.backend=nccl
fi
why=$("$RUNNER" version | sed -n 's/^CUDA: .*available: no (\(.*\))$/\1/p; s/^CUDA: not compiled in$/not compiled in/p')
if [ -n "$why" ]; then  # no usable GPU here: say why, exit 2, no run folder
  check 2 "error: command line 'device=cuda': device: cuda, but no CUDA device is usable here ($why); use device: cpu or auto" good.yaml device=cuda
fi
# cuda_graph: what it cannot hold, each refused before training (unit.engine checks the rest)
check 2 "error: command line 'cuda_graph=true': cuda_graph: needs a CUDA device; this run computes on the CPU" good.yaml cuda_graph=true device=cpu
check 2 "error: command line 'cuda_graph=true': cuda_graph: not with grad_accumulation_steps: 2 (one forward and backward per step)" good.yaml cuda_graph=true grad_accumulation_steps=2
check 2 "error: command line 'cuda_graph=yes please': cuda_graph: expected bool (true or false), found 'yes please'" good.yaml 'cuda_graph=yes please'
check 2 "error: command line 'device=gpu': device: expected one of auto, cpu, cuda, found 'gpu'; did you mean 'cuda'?" good.yaml device=gpu
# names other tools use: the suggestion is the key meant, not the nearest spelling
check 2 "error: command line 'output_dir=/tmp/x': output_dir: unknown key for the config; did you mean 'output_path'? (known keys: seed, num_epochs, max_time, validate_every, log_every_iters, output_path, threads, plugins, checkpoint_every, n_saved_checkpoints, resume_from, resume_allow_changes, device, pin_memory, tf32, deterministic, amp, channels_last, fused_kernels, grad_clip_norm, grad_accumulation_steps, cuda_graph, crash_iteration, crash_rank, crash_mode, dataflow, model, optimizer, criterion, scheduler, metrics, handlers, best, early_stopping, ema, profile, dist, tracking)" good.yaml output_dir=/tmp/x
check 2 "error: command line 'loss=cross_entropy': loss: unknown key for the config; did you mean 'criterion'? (known keys: seed, num_epochs, max_time, validate_every, log_every_iters, output_path, threads, plugins, checkpoint_every, n_saved_checkpoints, resume_from, resume_allow_changes, device, pin_memory, tf32, deterministic, amp, channels_last, fused_kernels, grad_clip_norm, grad_accumulation_steps, cuda_graph, crash_iteration, crash_rank, crash_mode, dataflow, model, optimizer, criterion, scheduler, metrics, handlers, best, early_stopping, ema, profile, dist, tracking)" good.yaml loss=cross_entropy
check 2 "error: command line 'optimizer.learning_rate=0.1': optimizer.learning_rate: unknown key for optimizer 'sgd'; did you mean 'lr'? (known keys: lr, momentum, dampening, nesterov, weight_decay, fused, name, no_decay)" good.yaml optimizer.learning_rate=0.1
check 2 "error: command line 'dist.bucket=5': dist.bucket: unknown key for dist; did you mean 'bucket_mb'? (known keys: backend, bucket_mb, sync_batchnorm, timeout)" good.yaml dist.bucket=5
check 2 "error: command line 'dist=4': dist: expected a map (backend, bucket_mb, sync_batchnorm, timeout) or null, found '4'" good.yaml dist=4
check 2 "error: command line 'best={metric: val/acc}': best.metric: 'val/acc' is not a logged metric; did you mean 'val/accuracy'? (logged: val/accuracy, val/top5, val/loss)" good.yaml 'best={metric: val/acc}'
check 2 "error: command line 'early_stopping={patience: 0}': early_stopping.patience: must be >= 1 (validations without improvement before stopping), found 0" good.yaml 'early_stopping={patience: 0}'
check 2 "error: command line 'best=3': best: expected a map (metric, mode, n_saved) or null, found '3'" good.yaml best=3
check 2 "error: resume_from: /nonexistent/run: no such checkpoint file or run folder" good.yaml resume_from=/nonexistent/run
check 2 "error: resume_from: auto: no valid checkpoint in any run folder under $TMP/runs/good" good.yaml resume_from=auto
check 2 "error: /dev/zero: '/dev/zero' is larger than 16 MiB; expected a YAML config file" /dev/zero
check 2 "error: command line 'crash_mode=explode': crash_mode: expected one of throw, kill, hang, validation, found 'explode'" good.yaml crash_mode=explode
check 2 "error: command line 'amp=fp32': amp: expected one of none, bf16, fp16, found 'fp32'; did you mean 'none'?" good.yaml amp=fp32
check 2 "error: command line 'grad_accumulation_steps=0': grad_accumulation_steps: must be >= 1 (split each rank's batch into N micro-batches, summing gradients (gradients are synchronised once, after the last)), found 0" good.yaml grad_accumulation_steps=0
check 2 "error: command line 'grad_clip_norm=0': grad_clip_norm: must be > 0 (clip the global gradient L2 norm to this value before each step), found 0" good.yaml grad_clip_norm=0
# the tracking: block
check 2 "error: command line 'tracking.tensorbord=false': tracking.tensorbord: unknown key for tracking; did you mean 'tensorboard'? (known keys: tensorboard, report, mlflow)" good.yaml tracking.tensorbord=false
check 2 "error: command line 'tracking.mlflow={experment: x}': tracking.mlflow.experment: unknown key for tracking.mlflow; did you mean 'experiment'? (known keys: uri, experiment, run_name)" good.yaml 'tracking.mlflow={experment: x}'
check 2 "error: command line 'tracking.mlflow=true': tracking.mlflow: expected map (MLflow: {uri: file:./mlruns or http://HOST:PORT, experiment: NAME, run_name: NAME}), found 'true'" good.yaml tracking.mlflow=true
check 2 "error: command line 'tracking.mlflow.uri=databricks://prof': tracking.mlflow.uri: 'databricks://prof': runner logs to MLflow's file store (file:PATH) or to a tracking server (http://HOST:PORT, https://HOST); not to databricks" good.yaml tracking.mlflow.uri=databricks://prof
check 2 "error: command line 'tracking.mlflow.uri=http:host': tracking.mlflow.uri: 'http:host' is not a server address; expected http://HOST:PORT or https://HOST" good.yaml tracking.mlflow.uri=http:host

# RUNNER_PLUGIN_PATH is searched too.
rc=0; RUNNER_PLUGIN_PATH="$FP/no_entry" "$RUNNER" good.yaml output_path="$TMP/runs" 2> "$TMP/err" >/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "RUNNER_PLUGIN_PATH: exit $rc"
[ "$(cat "$TMP/err")" = "error: plugin $FP/no_entry/libfixture_no_entry.so (from RUNNER_PLUGIN_PATH): not a runner plugin (no 'runner_plugin_entry' symbol; build it with runner_add_plugin)" ] || fail "RUNNER_PLUGIN_PATH: $(cat "$TMP/err")"

# Absurdly deep nesting, in two forms: flow brackets (yaml-cpp's own guard) and maps.
python_deep() { "$PYTHON" -c "import sys; print('num_epochs: ' + '['*int(sys.argv[1]) + ']'*int(sys.argv[1]))" "$1"; }
python_deep 5000 > "$TMP/deep1.yaml"
rc=0; "$RUNNER" "$TMP/deep1.yaml" 2> "$TMP/err" >/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "deep brackets: exit $rc"
expect_contains "$(cat "$TMP/err")" "error: $TMP/deep1.yaml" "deep brackets names the file"
[ "$(wc -l < "$TMP/err")" -eq 1 ] || fail "deep brackets: more than one line: $(cat "$TMP/err")"
python_deep 100 > "$TMP/deep2.yaml"
rc=0; "$RUNNER" "$TMP/deep2.yaml" 2> "$TMP/err" >/dev/null || rc=$?
[ "$rc" -eq 2 ] || fail "deep lists: exit $rc"
expect_contains "$(cat "$TMP/err")" "config is nested more than 64 levels deep" "deep lists"
finish
