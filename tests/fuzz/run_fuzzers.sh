#!/usr/bin/env bash
# Runs every libFuzzer target of the fuzz preset for a fixed time each, one
# after the other, and prints a line per target: seconds, executions, and
# whether it found anything. Exits 1 when any target did.
#
#   tests/fuzz/run_fuzzers.sh BUILD_DIR [SECONDS] [TARGET...]
#
# Each target starts from its checked-in seed corpus (tests/fuzz/corpus/NAME,
# read only) plus what earlier runs in BUILD_DIR found (BUILD_DIR/fuzz-corpus/
# NAME, written); a crashing input is saved in BUILD_DIR/fuzz-findings/NAME.
# To keep one as a regression input, copy it to tests/fuzz/regressions/NAME/.
#
# The limits of every run are the project's own (docs/RELIABILITY.md):
#   -max_len       one byte over the parser's own size cap, so the cap itself
#                  is exercised
#   -timeout       2 s an input: select_timeout, the budget a pull allows
#                  before it falls back
#   -malloc_limit_mb 48: no single allocation as large as the selection
#                  memory budget (kSelectionMemoryBudget)
#   -rss_limit_mb  1024: the unit's 256 MiB, with room for ASan's shadow
#                  memory and quarantine and libFuzzer's own corpus
set -uo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BUILD="${1:?usage: run_fuzzers.sh BUILD_DIR [SECONDS] [TARGET...]}"
SECONDS_EACH="${2:-20}"
shift 2 2>/dev/null || shift $#

# name              max_len (cap + 1)   dictionary          the cap
TARGETS=(
  "index             4194305  oci_json.dict       4 MiB: ParseLimits::max_bytes, the [registry] manifest cap"
  "host_profile      16777217 host_profile.dict   16 MiB: kMaxHostProfileBytes"
  "config            1048577  toml.dict           1 MiB: kMaxConfigBytes"
  "compat_spec_yaml  262145   compat_spec.dict    256 KiB: kMaxCompatSpecBytes"
  "compat_spec_json  262145   compat_spec.dict    256 KiB: kMaxCompatSpecBytes"
  "reference         4097     reference.dict      4096: kMaxReferenceLength"
  "hosts_toml        1048577  toml.dict           1 MiB: kMaxHostsTomlBytes"
  "www_authenticate  65537    www_authenticate.dict 64 KiB: kMaxHeaderBytes, all headers of a response"
  "docker_config     1048577  docker_config.dict  1 MiB: kMaxDockerConfigBytes"
  "referrers         4194305  oci_json.dict       4 MiB: kMaxListingBytes"
  "pull_request      16777217 -                   16 MiB: kMaxCriMessageBytes"
)

want=("$@")
failed=0
printf '%-18s %8s %12s  %s\n' target seconds execs result
for row in "${TARGETS[@]}"; do
  read -r name max_len dict _ <<<"$row"
  if [[ ${#want[@]} -gt 0 && " ${want[*]} " != *" $name "* ]]; then continue; fi
  bin="$BUILD/tests/fuzz/targets/fuzz_$name"
  if [[ ! -x $bin ]]; then
    echo "run_fuzzers.sh: $bin missing (cmake --preset fuzz && ninja -C $BUILD fuzz_all)" >&2
    exit 2
  fi
  corpus="$BUILD/fuzz-corpus/$name"
  findings="$BUILD/fuzz-findings/$name"
  log="$BUILD/fuzz-logs/$name.log"
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  args=(-max_total_time="$SECONDS_EACH" -max_len="$max_len" -timeout=2 -malloc_limit_mb=48
        -rss_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$findings/")
  [[ $dict != - ]] && args+=(-dict="$SRC/dicts/$dict")
  start=$(date +%s)
  ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    "$bin" "${args[@]}" "$corpus" "$SRC/corpus/$name" >"$log" 2>&1
  rc=$?
  took=$(($(date +%s) - start))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [[ $rc -eq 0 ]]; then
    result=ok
  else
    result="FOUND (exit $rc): see $log, input in $findings/"
    failed=1
  fi
  printf '%-18s %8s %12s  %s\n' "$name" "$took" "${execs:-?}" "$result"
done
exit $failed
