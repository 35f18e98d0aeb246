# Shared by the CLI end-to-end scripts: run imgsel, check its exit status and
# that its output (stdout and stderr) contains a string. Needs IMGSEL set;
# counts failures in `failures`.
failures=0

# expect NAME WANT_RC WANT_SUBSTRING -- ARGS...
expect() {
  local name="$1" want_rc="$2" want="$3"; shift 4
  local out rc
  out="$("$IMGSEL" "$@" 2>&1)"; rc=$?
  if [[ $rc -ne $want_rc ]]; then
    echo "FAIL $name: exit $rc, want $want_rc"; echo "$out" | head -20; failures=$((failures + 1)); return
  fi
  if [[ "$out" != *"$want"* ]]; then
    echo "FAIL $name: output lacks \"$want\""; echo "$out" | head -20; failures=$((failures + 1)); return
  fi
  echo "ok   $name"
}

# expect_lost_output NAME -- ARGS...: with standard output on a full disk
# (/dev/full) the command must not claim success: exit 74 and say so.
expect_lost_output() {
  local name="$1"; shift 2
  local err rc
  err="$("$IMGSEL" "$@" 2>&1 >/dev/full)"; rc=$?
  if [[ $rc -ne 74 || "$err" != *"writing the output failed"* ]]; then
    echo "FAIL $name: exit $rc, want 74 and a message; stderr: $err"; failures=$((failures + 1)); return
  fi
  echo "ok   $name"
}

# Exit status of a script: 0 when nothing failed.
finish() {
  if [[ $failures -ne 0 ]]; then echo "$failures failure(s)"; exit 1; fi
  echo "all passed"
}
