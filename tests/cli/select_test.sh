#!/usr/bin/env bash
# imgsel select end to end on the bundled example and on broken inputs.
# Usage: select_test.sh IMGSEL EXAMPLES_DIR
set -uo pipefail
IMGSEL="$1"
EX="$2"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
source "$(dirname "${BASH_SOURCE[0]}")/expect.sh"

# selected digest of a JSON decision
selected() { "$IMGSEL" "$@" -o json 2>/dev/null | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["selected"]["position"] if d["selected"] else "none")'; }

LAYOUT="oci-layout:$EX/layout:demo"
CFG="$EX/imgsel.toml"
V1="$EX/hosts/amd64-v1.json"
V3="$EX/hosts/amd64-v3.json"
ARM="$EX/hosts/arm64.json"

# --- decisions on the example (positions: 0 generic, 1 v3, 2 avx2+bmi2, 3 gpu, 4 zstd, 5 arm64, 6 arm/v7, 7 attestation)
check_pos() {
  local name="$1" want="$2"; shift 2
  local got; got="$(selected "$@")"
  if [[ "$got" == "$want" ]]; then echo "ok   $name"; else echo "FAIL $name: selected $got, want $want"; failures=$((failures + 1)); fi
}
check_pos "v3 host gets the v3 entry"              1 select "$LAYOUT" --config "$CFG" --host-profile "$V3"
check_pos "v1 host gets the generic entry"         0 select "$LAYOUT" --config "$CFG" --host-profile "$V1"
check_pos "arm64 host gets arm64"                  5 select "$LAYOUT" --config "$CFG" --host-profile "$ARM"
check_pos "nvidia handler gets the GPU build"      3 select "$LAYOUT" --config "$CFG" --host-profile "$V3" --runtime-handler nvidia
check_pos "first-match is containerd's choice"     0 select "$LAYOUT" --config "$CFG" --host-profile "$V3" --policy first-match
check_pos "raw index from stdin" 1 select --index - --config "$CFG" --host-profile "$V3" < "$EX/layout/blobs/sha256/$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$EX/layout/index.json")"

expect "text output marks the winner" 0 "selected: manifests[1]" -- select "$LAYOUT" --config "$CFG" --host-profile "$V3"
expect "text output explains rejections" 0 "rejected: platform linux/arm64 does not run on host linux/amd64/v3" -- select "$LAYOUT" --config "$CFG" --host-profile "$V3"
expect "json has the documented keys" 0 '"candidates"' -- select "$LAYOUT" --config "$CFG" --host-profile "$V3" -o json
expect "layout by digest" 0 "selected:" -- select "oci-layout:$EX/layout@$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$EX/layout/index.json")" --config "$CFG" --host-profile "$V3"

# --- nothing fits: exit 1 with reasons
cat > "$TMP/s390x.json" <<'J'
{"platform":{"os":"linux","architecture":"s390x"}}
J
expect "nothing fits exits 1" 1 "nothing in this index runs on this host" -- select "$LAYOUT" --config "$CFG" --host-profile "$TMP/s390x.json"

# --- bad input: exit 2 and a message naming the file and the place
echo '{"manifests": [' > "$TMP/trunc.json"
expect "truncated index" 2 "$TMP/trunc.json: not valid JSON" -- select --index "$TMP/trunc.json" --host-profile "$V3"
expect "missing index file" 2 "$TMP/none.json: cannot open" -- select --index "$TMP/none.json" --host-profile "$V3"
echo '{"mediaType":"text/plain"}' > "$TMP/wrongtype.json"
expect "not an index" 2 'mediaType "text/plain" is not an image index' -- select --index "$TMP/wrongtype.json" --host-profile "$V3"
/usr/bin/python3 -c 'print("{\"manifests\":[" + ",".join(["{}"]*10001) + "]}")' > "$TMP/many.json"
expect "too many entries" 2 "10001 entries, over the limit of 10000" -- select --index "$TMP/many.json" --host-profile "$V3"
/usr/bin/python3 -c 'print("{\"manifests\":[],\"x\":" + "["*200 + "]"*200 + "}")' > "$TMP/deep.json"
expect "too deep" 2 "nested deeper than 64" -- select --index "$TMP/deep.json" --host-profile "$V3"
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' ' ' > "$TMP/huge.json"
expect "too large" 2 "larger than the limit" -- select --index "$TMP/huge.json" --host-profile "$V3"
echo '{"platform":{"os":"linux"}}' > "$TMP/badhost.json"
expect "bad host profile" 2 "$TMP/badhost.json: /platform/architecture: missing" -- select "$LAYOUT" --host-profile "$TMP/badhost.json"
printf 'version = 1\n[[prefer]]\nanotation = "x"\nweight = 1\n' > "$TMP/bad.toml"
expect "bad config" 2 "$TMP/bad.toml:3:1: unknown key \"anotation\"" -- select "$LAYOUT" --config "$TMP/bad.toml" --host-profile "$V3"
expect "unknown tag" 2 'no entry tagged "nope" (tags: demo)' -- select "oci-layout:$EX/layout:nope" --host-profile "$V3"
expect "no source" 2 "give exactly one of SOURCE" -- select --host-profile "$V3"
expect "not a reference" 2 "a reference has no scheme" -- select "ftp://x" --host-profile "$V3"
expect "bad policy" 2 "" -- select "$LAYOUT" --policy random

# A layout whose index blob was tampered with must be refused, not used.
cp -r "$EX/layout" "$TMP/layout"
IDX="$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$TMP/layout/index.json")"
sed -i 's/amd64/AMD64/' "$TMP/layout/blobs/sha256/$IDX"
expect "tampered blob" 2 "does not match digest" -- select "oci-layout:$TMP/layout:demo" --host-profile "$V3"
printf 'garbage' > "$TMP/layout/blobs/sha256/$IDX"
expect "truncated blob" 2 "does not match the descriptor" -- select "oci-layout:$TMP/layout:demo" --host-profile "$V3"

# --- imgsel matrix: every image against every saved host
mkdir -p "$TMP/a" "$TMP/b"; cp "$V3" "$TMP/a/x.json"; cp "$ARM" "$TMP/b/x.json"
expect "matrix: two profiles of one file name are told apart" 0 "$TMP/b/x.json" -- matrix "$LAYOUT" --host-profile "$TMP/a/x.json" --host-profile "$TMP/b/x.json"
expect "matrix: a reference that names nothing is bad input" 2 'invalid image reference "BAD REF!!"' -- matrix 'BAD REF!!' --host-profile "$V3"
expect "matrix table" 0 "linux/amd64/v3" -- matrix "$LAYOUT" --config "$CFG" --host-profile "$V1" --host-profile "$V3" --host-profile "$ARM"
got=$("$IMGSEL" matrix "$LAYOUT" --config "$CFG" --host-profile "$V1" --host-profile "$V3" --host-profile "$ARM" -o json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(r["platform"] for r in d["images"][0]["results"]))')
if [[ "$got" == "linux/amd64 linux/amd64/v3 linux/arm64" ]]; then echo "ok   matrix json per host"; else echo "FAIL matrix json: $got"; failures=$((failures + 1)); fi
expect "matrix: a host nothing fits" 1 "NOTHING FITS" -- matrix "$LAYOUT" --config "$CFG" --host-profile "$V3" --host-profile "$TMP/s390x.json"
expect "matrix: bad profile" 2 "/platform/architecture: missing" -- matrix "$LAYOUT" --host-profile "$TMP/badhost.json"
expect "matrix: no host" 2 "" -- matrix "$LAYOUT"

# --- strings from the index reach the terminal escaped: no colours, no forged rows
printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux\u001b[31mEVIL\n* 1    0    forged","architecture":"amd64"}}]}' > "$TMP/ctrl.json"
ctrl_out="$("$IMGSEL" select --index "$TMP/ctrl.json" --host-profile "$V3" 2>&1)"
if [[ "$ctrl_out" != *$'\x1b'* && "$ctrl_out" != *$'\n* 1    0    forged'* && "$ctrl_out" == *'\x1b[31mevil\x0a* 1'* ]]; then
  echo "ok   control characters from an index are escaped"
else
  echo "FAIL control characters from an index are escaped: $ctrl_out"; failures=$((failures + 1))
fi

# A digest from an index, and a host profile's file name, reach the terminal escaped.
printf '%s' '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:\u001b]0;pwned\u0007\u001b[2J","size":1,"platform":{"os":"linux","architecture":"amd64"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"amd64"}}]}' > "$TMP/escdigest.json"
esc_out="$("$IMGSEL" select --index "$TMP/escdigest.json" --host-profile "$V3" 2>&1)"
if [[ "$esc_out" != *$'\x1b'* && "$esc_out" != *$'\x07'* && "$esc_out" == *'\x1b'* ]]; then
  echo "ok   a digest from an index is escaped"
else
  echo "FAIL a digest from an index is escaped: $esc_out"; failures=$((failures + 1))
fi
ESCNAME="$TMP/host"$'\x1b'"[2J.json"
cp "$V3" "$ESCNAME"
esc_out="$("$IMGSEL" matrix "$LAYOUT" --host-profile "$ESCNAME" 2>&1)"
if [[ "$esc_out" != *$'\x1b'* && "$esc_out" == *'\x1b[2J'* ]]; then
  echo "ok   matrix escapes host file names"
else
  echo "FAIL matrix escapes host file names: $esc_out"; failures=$((failures + 1))
fi

# --- a registry that never answers: the whole selection ends at --timeout
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64); s.settimeout(0.2)
print(s.getsockname()[1], flush=True)
held, end = [], time.time() + 15
while time.time() < end:
    try: held.append(s.accept())
    except OSError: pass
' > "$TMP/silent.port" &
SILENT_PID=$!
for _ in $(seq 50); do [[ -s "$TMP/silent.port" ]] && break; sleep 0.1; done
SILENT="127.0.0.1:$(head -1 "$TMP/silent.port")"
start=$(date +%s%N)
expect "select: a silent registry ends at --timeout" 3 "selection budget of 500ms ran out" -- select "$SILENT/app:v1" --host-profile "$V3" --timeout 0.5
took_ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [[ $took_ms -lt 3000 ]]; then echo "ok   ... in ${took_ms} ms"; else echo "FAIL select took ${took_ms} ms for a 0.5 s timeout"; failures=$((failures + 1)); fi
expect "matrix: a silent registry ends at --timeout" 3 "selection budget of 500ms ran out" -- matrix "$SILENT/app:v1" --host-profile "$V3" --timeout 0.5
expect "select: --timeout nan is bad input" 2 "--timeout: want seconds" -- select "$SILENT/app:v1" --host-profile "$V3" --timeout nan
kill "$SILENT_PID" 2>/dev/null; wait "$SILENT_PID" 2>/dev/null

# --- an answer that cannot be written is a failure, in every output form
if [[ -w /dev/full ]]; then
  expect_lost_output "select -o json to a full disk" -- select "$LAYOUT" --config "$CFG" --host-profile "$V3" -o json
  expect_lost_output "select text to a full disk" -- select "$LAYOUT" --config "$CFG" --host-profile "$V3"
  expect_lost_output "matrix to a full disk" -- matrix "$LAYOUT" --host-profile "$V3"
fi

# --- inputs may be pipes, with the same bounds as files
IDX_BLOB="$EX/layout/blobs/sha256/$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"].split(":")[1])' "$EX/layout/index.json")"
check_pos "--index from a process substitution" 1 select --index <(cat "$IDX_BLOB") --config "$CFG" --host-profile "$V3"
check_pos "--host-profile from a process substitution" 1 select "$LAYOUT" --config "$CFG" --host-profile <(cat "$V3")
expect "a pipe larger than the limit is refused" 2 "larger than the limit" -- select --index <(head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' ' ') --host-profile "$V3"

# --- entries without a platform: their image configs decide, as in containerd
/usr/bin/python3 - "$TMP/noplat" <<'PY'
import hashlib, json, os, sys
root = sys.argv[1]
os.makedirs(f"{root}/blobs/sha256")
def blob(data):
    data = data.encode() if isinstance(data, str) else data
    d = hashlib.sha256(data).hexdigest()
    open(f"{root}/blobs/sha256/{d}", "wb").write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}
def image(config):
    c = blob(json.dumps(config))
    m = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(c, mediaType="application/vnd.oci.image.config.v1+json"), "layers": []}))
    return dict(m, mediaType="application/vnd.oci.image.manifest.v1+json")
entries = [image({"os": "linux", "architecture": "arm64"}),
           image({"os": "linux", "architecture": "amd64"}),
           dict(image({}), artifactType="application/vnd.example.sbom")]
idx = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": entries}))
json.dump({"schemaVersion": 2, "manifests": [dict(idx, mediaType="application/vnd.oci.image.index.v1+json",
           annotations={"org.opencontainers.image.ref.name": "t"})]}, open(f"{root}/index.json", "w"))
open(f"{root}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
check_pos "no platform: the entry whose config runs here" 1 select "oci-layout:$TMP/noplat:t" --host-profile "$V3"
check_pos "no platform: arm64 config on an arm64 host" 0 select "oci-layout:$TMP/noplat:t" --host-profile "$ARM"
expect "no platform: the reason names the config's platform" 0 "its image config names linux/arm64, which does not run on host linux/amd64/v3" -- select "oci-layout:$TMP/noplat:t" --host-profile "$V3"
expect "an artifact in an index is not an image" 0 'an artifact (artifactType "application/vnd.example.sbom"), not an image' -- select "oci-layout:$TMP/noplat:t" --host-profile "$V3"

# matrix decides as select does, entries without a platform included: one
# fetch of the layout, each host's cell the entry select gives that host.
sel_digest() { "$IMGSEL" select "oci-layout:$TMP/noplat:t" --host-profile "$1" -o json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["selected"]["digest"])'; }
want="$(sel_digest "$V3") $(sel_digest "$ARM")"
got=$("$IMGSEL" matrix "oci-layout:$TMP/noplat:t" --host-profile "$V3" --host-profile "$ARM" -o json | /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(" ".join(r["selected"] for r in d["images"][0]["results"]))')
if [[ "$got" == "$want" && "$want" != *None* ]]; then echo "ok   matrix agrees with select on entries without a platform"; else echo "FAIL matrix: $got, select: $want"; failures=$((failures + 1)); fi

finish
