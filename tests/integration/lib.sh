# Helpers for integration tests. Each test runs the real runner binary.
set -euo pipefail
: "${RUNNER:?set by ctest}" "${SOURCE_DIR:?set by ctest}"
TMP=$(mktemp -d /tmp/runner-it-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_contains() {  # haystack needle what
  if [[ "$1" != *"$2"* ]]; then fail "$3: expected to contain '$2', got: $1"; fi
}
# Runs "$@" with stdout and stderr into file $1, carrying on when it fails: sets RC
# (its exit code) and ELAPSED (seconds).
run_capture() {
  local out=$1; shift
  local start=$SECONDS
  RC=0
  "$@" > "$out" 2>&1 || RC=$?
  ELAPSED=$((SECONDS - start))
}
# After run_capture: fails with the output's tail unless the command succeeded.
expect_success() {  # output_file what
  if [ "$RC" -ne 0 ]; then tail -20 "$1" >&2; fail "$2 (exit $RC)"; fi
}
# Each "OVERRIDE|MESSAGE" spec: `runner CONFIG output_path=bad OVERRIDE` exits 2 with one
# line that contains MESSAGE, and leaves no run folder.
expect_one_line_errors() {  # config spec...
  local config=$1 spec; shift
  for spec in "$@"; do
    run_capture bad.txt "$RUNNER" "$config" output_path=bad "${spec%%|*}"
    [ "$RC" -eq 2 ] || fail "${spec%%|*}: exit $RC, expected 2: $(cat bad.txt)"
    expect_contains "$(cat bad.txt)" "${spec#*|}" "${spec%%|*}"
    [ "$(wc -l < bad.txt)" -eq 1 ] || fail "${spec%%|*}: more than one line: $(cat bad.txt)"
  done
  [ ! -e bad ] || fail "a refused config left a run folder"
}
# The final weights hash run.log of run folder $1 gives (one process, or every rank agreeing).
final_hash() { grep -ho 'final weights hash [0-9a-f]*\|weights identical on all [0-9]* ranks (hash [0-9a-f]*' "$1"/run.log | tail -1 | grep -o '[0-9a-f]\{16\}'; }
# A TCP port nobody listens on now, for a server or launcher a test starts.
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
finish() {
  if [ "$failures" -ne 0 ]; then echo "$failures check(s) failed" >&2; exit 1; fi
  echo "all checks passed"
}
