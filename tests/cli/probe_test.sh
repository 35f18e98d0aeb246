#!/usr/bin/env bash
# imgsel probe end to end: this host, a fixture root, --save round trip into
# imgsel select, and bad input.
# Usage: probe_test.sh IMGSEL REPO_ROOT
set -uo pipefail
IMGSEL="$1"
ROOT="$2"
PY=/usr/bin/python3
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
failures=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

# This host: the JSON is a profile whose architecture agrees with uname -m.
json=$("$IMGSEL" probe -o json) || fail "probe exited $?"
arch=$($PY -c 'import json,sys; print(json.load(sys.stdin)["platform"]["architecture"])' <<<"$json")
case "$(uname -m)" in
  x86_64) want=amd64 ;; aarch64) want=arm64 ;; *) want=$(uname -m) ;;
esac
[[ "$arch" == "$want" ]] && ok "architecture $arch" || fail "architecture $arch, uname says $want"
cpuid=$($PY -c 'import json,sys; print(len(json.load(sys.stdin)["nfd"]["flags"].get("cpu.cpuid",{}).get("elements",{})))' <<<"$json")
[[ "$cpuid" -gt 0 ]] && ok "nfd cpu.cpuid has $cpuid flags" || fail "no cpu.cpuid flags"

# -o labels: the labels NFD would publish for this host, as a node shows
# them; the kernel's major version is uname's.
labels=$("$IMGSEL" probe -o labels) || fail "probe -o labels exited $?"
major=$(uname -r | cut -d. -f1)
grep -qx "feature.node.kubernetes.io/kernel-version.major=$major" <<<"$labels" \
  && ok "labels: kernel-version.major=$major" || fail "labels lack kernel-version.major=$major"
n=$(grep -c '^feature.node.kubernetes.io/cpu-cpuid\.[A-Z0-9_]*=true$' <<<"$labels")
[[ "$n" -gt 0 && "$n" == "$cpuid" ]] && ok "labels: one cpu-cpuid label per flag ($n)" \
  || fail "labels: $n cpu-cpuid labels for $cpuid flags"
bad=$(grep -cv '^[^=]*=' <<<"$labels")
[[ "$bad" == 0 ]] && ok "labels: every line is key=value" || fail "labels: $bad lines not key=value"

# --save writes a profile that select accepts, and that gives the same decision.
"$IMGSEL" probe --save "$TMP/me.json" >/dev/null || fail "probe --save"
a=$("$IMGSEL" select "oci-layout:$ROOT/examples/layout:demo" --host-profile "$TMP/me.json" -o json | $PY -c 'import json,sys; print(json.load(sys.stdin)["selected"]["digest"])')
b=$("$IMGSEL" select "oci-layout:$ROOT/examples/layout:demo" -o json | $PY -c 'import json,sys; print(json.load(sys.stdin)["selected"]["digest"])')
[[ -n "$a" && "$a" == "$b" ]] && ok "saved profile gives the live decision" || fail "saved $a vs live $b"

# A fixture root: an arm64 server.
out=$("$IMGSEL" probe --root "$ROOT/tests/data/probe/arm64-server" -o json)
plat=$($PY -c 'import json,sys; p=json.load(sys.stdin)["platform"]; print(p["architecture"]+"/"+p.get("variant",""))' <<<"$out")
[[ "$plat" == "arm64/v8.2" ]] && ok "fixture arm64 server" || fail "fixture platform $plat"
sel=$("$IMGSEL" probe --root "$ROOT/tests/data/probe/arm64-server" --save "$TMP/arm.json" >/dev/null && \
      "$IMGSEL" select "oci-layout:$ROOT/examples/layout:demo" --host-profile "$TMP/arm.json" -o json | \
      $PY -c 'import json,sys; print(json.load(sys.stdin)["selected"]["platform"]["architecture"])')
[[ "$sel" == "arm64" ]] && ok "arm64 profile selects the arm64 entry" || fail "arm64 profile selected $sel"

# Bad input: exit 2 naming the file.
err=$("$IMGSEL" probe --root "$ROOT/tests/data/probe/broken-cpuinfo" 2>&1 >/dev/null); rc=$?
[[ $rc == 2 && "$err" == *cpuinfo* ]] && ok "broken cpuinfo: exit 2" || fail "broken cpuinfo: rc $rc: $err"
printf 'version = 1\n[host]\nfeaturs = []\n' > "$TMP/bad.toml"
err=$("$IMGSEL" probe --config "$TMP/bad.toml" 2>&1 >/dev/null); rc=$?
[[ $rc == 2 && "$err" == *"bad.toml:3:1"* ]] && ok "bad config: exit 2 with position" || fail "bad config: rc $rc: $err"
err=$("$IMGSEL" probe --save /nonexistent/dir/p.json 2>&1 >/dev/null); rc=$?
[[ $rc == 2 && "$err" == */nonexistent/dir* ]] && ok "unwritable --save: exit 2" || fail "unwritable save: rc $rc: $err"
# --save replaces a regular file only: a FIFO (as /dev/full, a device) stays.
mkfifo "$TMP/pipe"
err=$(timeout 20 "$IMGSEL" probe --save "$TMP/pipe" 2>&1 >/dev/null); rc=$?
[[ $rc == 2 && "$err" == *"not a regular file"* && -p "$TMP/pipe" ]] \
  && ok "--save onto a FIFO: exit 2, the FIFO kept" || fail "--save onto a FIFO: rc $rc: $err"
err=$("$IMGSEL" probe --save "" 2>&1 >/dev/null); rc=$?
[[ $rc == 2 ]] && ok "--save with no name: exit 2" || fail "--save \"\": rc $rc: $err"

if [[ -w /dev/full ]]; then
  err=$("$IMGSEL" probe -o json 2>&1 >/dev/full); rc=$?
  [[ $rc == 74 && "$err" == *"writing the output failed"* ]] && ok "probe to a full disk: exit 74" \
    || fail "probe to a full disk: rc $rc: $err"
fi

if [[ $failures -ne 0 ]]; then echo "$failures failure(s)"; exit 1; fi
echo "all passed"
