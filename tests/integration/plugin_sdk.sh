#!/usr/bin/env bash
# The plugin SDK from a user's side: install the runner to a fresh prefix, scaffold one
# plugin of every kind with `runner new-plugin` outside the source tree, build them
# against the installed SDK with find_package(Runner), list them, and train with each.
# The model and handler projects are built exactly as their README says; the other
# five in one CMake project (fewer LibTorch configure runs).
source "$(dirname "$0")/lib.sh"
cmake --install "$BUILD_DIR" --prefix "$TMP/prefix" > /dev/null
R="$TMP/prefix/bin/runner"
export CMAKE_PREFIX_PATH="$TMP/prefix"
GEN=()
if command -v ninja > /dev/null; then GEN=(-G Ninja); fi
cd "$TMP"

echo "== new-plugin: bad input"
check_err() {  # expected_line args...
  local want=$1; shift
  local rc=0
  "$R" new-plugin "$@" > out.txt 2> err.txt || rc=$?
  [ "$rc" -eq 2 ] || fail "new-plugin $*: exit $rc, expected 2"
  [ "$(cat err.txt)" = "$want" ] || fail "new-plugin $*: got '$(cat err.txt)', expected '$want'"
}
check_err "error: new-plugin: NAME must be lower case letters, digits and '_', starting with a letter (it names the component, the library and the files), got 'My-Net'" My-Net --kind model
check_err "error: new-plugin: --kind is required (one of model, dataflow, optimizer, criterion, scheduler, metric, handler)" my_net
check_err "error: new-plugin: --kind: unknown kind 'modle'; did you mean 'model'? (one of model, dataflow, optimizer, criterion, scheduler, metric, handler)" my_net --kind modle
mkdir -p taken && touch taken/file
check_err "error: new-plugin: taken already exists and is not an empty folder; choose another --dir" my_net --kind model --dir taken
check_err "error: usage: runner new-plugin NAME --kind KIND [--dir DIR]" --kind model

echo "== scaffold every kind"
kinds=(model dataflow optimizer criterion scheduler metric handler)
for k in "${kinds[@]}"; do
  "$R" new-plugin "my_$k" --kind "$k" --dir "work/my_$k" > "new_$k.txt" || fail "new-plugin --kind $k"
  for f in CMakeLists.txt "my_$k.cpp" "my_$k.yaml" README.md; do [ -s "work/my_$k/$f" ] || fail "$k: no $f"; done
  expect_contains "$(cat "work/my_$k/README.md")" "runner my_$k.yaml" "$k README names the three commands"
done

echo "== build: model and handler as their README says, the rest in one project"
for k in model handler; do
  (cd "work/my_$k" && cmake -S . -B build "${GEN[@]}" > cmake.log 2>&1 && cmake --build build > build.log 2>&1) ||
    { cat "work/my_$k/cmake.log" "work/my_$k/build.log"; fail "building the $k scaffold"; }
done
{
  echo 'cmake_minimum_required(VERSION 3.18)'
  echo 'project(scaffolds CXX)'
  for k in dataflow optimizer criterion scheduler metric; do echo "add_subdirectory(my_$k)"; done
} > work/CMakeLists.txt
(cmake -S work -B work/build "${GEN[@]}" > cmake_all.log 2>&1 && cmake --build work/build -j 2 > build_all.log 2>&1) ||
  { cat cmake_all.log build_all.log; fail "building the other scaffolds"; }
for k in dataflow optimizer criterion scheduler metric; do
  [ -f "work/build/libmy_$k.so" ] || fail "no libmy_$k.so"
  mkdir -p "work/my_$k/build" && cp "work/build/libmy_$k.so" "work/my_$k/build/"  # where its config looks
done

echo "== list"
paths=()
for k in "${kinds[@]}"; do paths+=(--plugin-path "work/my_$k/build"); done
listing=$("$R" plugins "${paths[@]}")
for k in "${kinds[@]}"; do expect_contains "$listing" "  my_$k " "runner plugins lists $k/my_$k"; done
expect_contains "$("$R" describe handler/my_handler --plugin-path work/my_handler/build)" \
  "every                int     default 10" "describe shows the handler's schema"

echo "== train with each (its own config)"
for k in "${kinds[@]}"; do
  (cd "work/my_$k" && "$R" "my_$k.yaml" output_path="$TMP/runs" -q > "$TMP/train_$k.txt" 2>&1) ||
    { cat "train_$k.txt"; fail "training with the $k scaffold"; continue; }
  run=$(ls -d "$TMP/runs/my_$k"/* | tail -1)
  "$PYTHON" - "$run/metrics.jsonl" "$k" <<'PY' || fail "$k: metrics.jsonl"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
val = [r for r in rows if "val/accuracy" in r]
assert len(val) == 2, f"expected 2 validations, got {len(val)}"
assert val[-1]["val/accuracy"] > 0.2, val[-1]
if sys.argv[2] == "metric":
    assert 0 < val[-1]["val/my_metric"] <= 1, val[-1]
if sys.argv[2] == "handler":
    norms = [r["train/grad_norm"] for r in rows if "train/grad_norm" in r]
    assert len(norms) == 12 and all(n > 0 for n in norms), norms  # 128 iterations, every 10
print(f"{sys.argv[2]}: val/accuracy {val[-1]['val/accuracy']:.3f}")
PY
done
hrun=$(ls -d "$TMP/runs/my_handler"/* | tail -1)
for e in 1 2; do
  [ -s "$hrun/my_handler_epoch$e.json" ] || fail "the handler wrote no file for epoch $e"
done
expect_contains "$(cat "$hrun/my_handler_epoch2.json")" '"val/accuracy": ' "the handler's file has the epoch's metrics"

echo "== a handler that throws names itself"
sed -i 's|    if (!out) throw std::runtime_error(path + ": cannot write");|    throw std::runtime_error("disk full");|' \
  work/my_handler/my_handler.cpp
cmake --build work/my_handler/build > /dev/null 2>&1 || fail "rebuilding the handler"
run_capture throw.txt "$R" work/my_handler/my_handler.yaml output_path="$TMP/runs2" num_epochs=1 -q
[ "$RC" -eq 1 ] || fail "a throwing handler exits 1, got $RC"
expect_contains "$(cat throw.txt)" "error: handler my_handler (plugin $TMP/work/my_handler/build/libmy_handler.so): disk full" \
  "handler failure message"
finish
