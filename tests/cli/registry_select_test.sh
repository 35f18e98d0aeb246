#!/usr/bin/env bash
# imgsel select REF end to end against Debian's docker-registry on loopback
# (distribution 2.8: no referrers API, so the sha256-<hex> tag fallback is
# used for real). The bundled example index is pushed with skopeo; specs are
# attached with imgsel attach; each decision is checked.
# Usage: registry_select_test.sh IMGSEL EXAMPLES_DIR
set -uo pipefail
IMGSEL="$1"
EX="$2"
for tool in docker-registry skopeo curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool (deploy/dev.sh deps installs it)"; exit 1; }
done
PY=/usr/bin/python3
WORK="$(mktemp -d /tmp/imgsel-select-XXXXXX)"
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }

start_registry() {
  PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$WORK/registry.yml" <<YML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/data
http:
  addr: 127.0.0.1:$PORT
YML
  docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "docker-registry did not come up"; cat "$WORK/registry.log"; exit 1
}
start_registry
timeout 60 skopeo copy -q --all --dest-tls-verify=false "oci:$EX/layout:demo" \
  "docker://127.0.0.1:$PORT/demo:v1" || { echo "skopeo push failed"; exit 1; }
REF="127.0.0.1:$PORT/demo:v1"

# Config: a disk cache. Referrers lists are cached for referrers_ttl (an
# attached spec shows up after at most that long); the steps that attach use
# a TTL of 0 so each selection sees the registry's current list.
cat > "$WORK/fresh.toml" <<TOML
version = 1
[compat]
cache_dir = "$WORK/cache"
referrers_ttl = "0s"
TOML
cat > "$WORK/cached.toml" <<TOML
version = 1
[compat]
cache_dir = "$WORK/cache"
referrers_ttl = "10m"
TOML
CONFIG="$WORK/fresh.toml"
cat > "$WORK/host.json" <<'JSON'
{"platform": {"os": "linux", "architecture": "amd64", "variant": "v3"},
 "features": ["x86-64-v3"],
 "nfd": {"attributes": {"kernel.version": {"elements": {"major": "6", "minor": "1"}}},
         "flags": {"cpu.cpuid": {"elements": {"AVX2": {}, "FMA3": {}}}}}}
JSON
sel() { timeout 60 "$IMGSEL" select "$@" --config "$CONFIG" --host-profile "$WORK/host.json"; }
field() { $PY -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
digest_at() {  # position -> digest of that entry in the pushed index
  sel "$REF" -o json | field "[c['digest'] for c in d['candidates'] if c['position']==$1][0]"
}

# 1. No artifacts: the v3 entry (position 1) wins.
got=$(sel "$REF" -o json | field "d['selected']['position']")
[[ "$got" == 1 ]] && echo "ok   v3 entry without artifacts" || fail "without artifacts: selected $got, want 1"

V3=$(digest_at 1)
ZSTD=$(digest_at 4)
INDEX=$(sel "$REF" -o json | field "d['digest']")

# 2. An artifact on the v3 entry that this host fails (kernel >= 7) rules it out.
cat > "$WORK/needs-kernel-7.yaml" <<'YAML'
version: v1alpha1
compatibilities:
- description: needs a newer kernel
  rules:
  - name: kernel
    matchFeatures:
    - feature: kernel.version
      matchExpressions:
        major: {op: Ge, value: ["7"]}
YAML
timeout 60 "$IMGSEL" attach "127.0.0.1:$PORT/demo@$V3" "$WORK/needs-kernel-7.yaml" >/dev/null \
  || fail "attach to the v3 entry"
out=$(sel "$REF" -o json)
got=$(field "d['selected']['position']" <<<"$out")
[[ "$got" == 2 ]] && echo "ok   failing artifact rules the v3 entry out" || fail "failing artifact: selected $got, want 2"
reason=$(field "' | '.join([r for c in d['candidates'] if c['position']==1 for r in c['reasons']])" <<<"$out")
[[ "$reason" == *"no compatibility set"* ]] && echo "ok   the reason names the artifact" || fail "reason: $reason"
text=$(sel "$REF")
[[ "$text" == *"kernel.version"* && "$text" == *"FAIL"* ]] \
  && echo "ok   text output prints the rule results" || fail "text lacks rule results: $text"

# 3. A matching artifact with a weight lifts the zstd twin to the top.
cat > "$WORK/zstd-ok.yaml" <<'YAML'
version: v1alpha1
compatibilities:
- weight: 20
  tag: zstd
  rules:
  - name: cpu
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions:
        AVX2: {op: Exists}
YAML
timeout 60 "$IMGSEL" attach "127.0.0.1:$PORT/demo@$ZSTD" "$WORK/zstd-ok.yaml" >/dev/null \
  || fail "attach to the zstd entry"
out=$(sel "$REF" -o json)
got=$(field "d['selected']['position']" <<<"$out")
score=$(field "d['candidates'][0]['score']" <<<"$out")
[[ "$got" == 4 && "$score" == 20 ]] && echo "ok   weighted artifact wins" || fail "weighted: selected $got score $score, want 4 / 20"

# 4. A warm cache: the same selection by digest makes no registry request.
CONFIG="$WORK/cached.toml"
PINNED="127.0.0.1:$PORT/demo@$INDEX"
sel "$PINNED" -o json >/dev/null
trips=$(sel "$PINNED" -o json | field "d['roundTrips']")
[[ "$trips" == 0 ]] && echo "ok   warm cache: 0 registry requests" || fail "warm cache made $trips requests"
trips=$(sel "$REF" -o json | field "d['roundTrips']")
[[ "$trips" == 1 ]] && echo "ok   warm cache by tag: 1 request (the GET of the tag)" || fail "warm tag made $trips requests"

# 5. An air-gapped node: a hosts.toml mirror (this registry) in front of an
# upstream whose name does not resolve, found through a config_path list.
# The mirror has no referrers API and its 404 there must send the lookup to
# the sha256-<hex> tag on the mirror: the artifacts decide, no fallback.
mkdir -p "$WORK/certs.d/upstream.invalid" "$WORK/empty-root"
cat > "$WORK/certs.d/upstream.invalid/hosts.toml" <<TOML
server = "https://upstream.invalid"
[host."http://127.0.0.1:$PORT"]
  capabilities = ["pull", "resolve"]
TOML
cat > "$WORK/mirror.toml" <<TOML
version = 1
[compat]
cache_dir = "$WORK/mirror-cache"
referrers_ttl = "0s"
[registry]
config_path = "$WORK/empty-root:$WORK/certs.d"
TOML
CONFIG="$WORK/mirror.toml"
out=$(sel "upstream.invalid/demo:v1" -o json); rc=$?
got=$(field "d['selected']['position']" <<<"$out")
score=$(field "d['candidates'][0]['score']" <<<"$out")
fb=$(field "d.get('fallback')" <<<"$out")
[[ $rc == 0 && "$got" == 4 && "$score" == 20 && "$fb" != True ]] \
  && echo "ok   through a mirror of an unreachable upstream: the artifacts decide" \
  || fail "mirror: rc $rc selected $got score $score fallback $fb"
err=$(sel "upstream.invalid/demo:no-such-tag" 2>&1 >/dev/null); rc=$?
[[ $rc == 4 && "$err" == *"127.0.0.1:$PORT"* ]] \
  && echo "ok   a tag the mirror lacks: exit 4 naming the mirror" || fail "mirror missing tag: rc $rc, $err"
CONFIG="$WORK/cached.toml"
err=$(sel "127.0.0.1:$PORT/demo:no-such-tag" 2>&1 >/dev/null); rc=$?
[[ $rc == 4 ]] && echo "ok   a tag that does not exist: exit 4" || fail "missing tag: rc $rc, $err"
mx() { timeout 60 "$IMGSEL" matrix "$@" --config "$CONFIG" --host-profile "$WORK/host.json"; }
mx "127.0.0.1:$PORT/demo:no-such-tag" >/dev/null 2>&1; rc=$?
[[ $rc == 4 ]] && echo "ok   matrix: a tag that does not exist: exit 4" || fail "matrix missing tag: rc $rc"
mx "127.0.0.1:$PORT/demo:no-such-tag" "127.0.0.1:1/demo:v1" >/dev/null 2>&1; rc=$?
[[ $rc == 3 ]] && echo "ok   matrix: an unreachable registry beside a missing tag: exit 3" \
  || fail "matrix unreachable and missing: rc $rc"

# 5b. One set of registry flags: --hosts-dir does what config_path does, for
# select and matrix; a directory that does not exist is bad input; attach
# reads --config's [registry] table (a name only its hosts.toml resolves).
SAVED_CONFIG="$CONFIG"
CONFIG="$WORK/fresh.toml"
out=$(sel "upstream.invalid/demo:v1" -o json --hosts-dir "$WORK/empty-root:$WORK/certs.d"); rc=$?
got=$(field "d['selected']['position']" <<<"$out")
[[ $rc == 0 && "$got" == 4 ]] && echo "ok   select --hosts-dir: the mirror answers as with config_path" \
  || fail "select --hosts-dir: rc $rc selected $got"
timeout 60 "$IMGSEL" matrix "upstream.invalid/demo:v1" --config "$CONFIG" \
  --host-profile "$WORK/host.json" --hosts-dir "$WORK/certs.d" >/dev/null 2>&1; rc=$?
[[ $rc == 0 ]] && echo "ok   matrix --hosts-dir: the mirror answers" || fail "matrix --hosts-dir: rc $rc"
err=$(sel "upstream.invalid/demo:v1" --hosts-dir "$WORK/no-such-dir" 2>&1 >/dev/null); rc=$?
[[ $rc == 2 && "$err" == *"--hosts-dir: $WORK/no-such-dir: not a directory"* ]] \
  && echo "ok   --hosts-dir naming no directory: exit 2 saying so" || fail "bad --hosts-dir: rc $rc, $err"
timeout 60 skopeo copy -q --all --dest-tls-verify=false "oci:$EX/layout:demo" \
  "docker://127.0.0.1:$PORT/attach-target:v1" || fail "skopeo push attach-target"
mkdir -p "$WORK/alias.d/alias.invalid"
printf 'server = "http://127.0.0.1:%s"\n' "$PORT" > "$WORK/alias.d/alias.invalid/hosts.toml"
printf 'version = 1\n[registry]\nconfig_path = "%s"\n' "$WORK/alias.d" > "$WORK/alias.toml"
timeout 60 "$IMGSEL" attach "alias.invalid/attach-target:v1" "$WORK/zstd-ok.yaml" \
  --config "$WORK/alias.toml" --timeout 10 >/dev/null 2>&1; rc=$?
[[ $rc == 0 ]] && echo "ok   attach --config: its [registry] config_path resolves the name" \
  || fail "attach --config: rc $rc"
timeout 60 "$IMGSEL" attach "alias.invalid/attach-target:v1" "$WORK/zstd-ok.yaml" \
  --config "$WORK/fresh.toml" --timeout 3 >/dev/null 2>&1; rc=$?
[[ $rc == 1 ]] && echo "ok   attach without that config: the name does not resolve (exit 1)" \
  || fail "attach without the alias config: rc $rc"

# 5c. On a terminal, a registry that holds a request past a second is named
# on stderr while imgsel waits; off a terminal nothing is printed.
$PY -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
held = []
end = time.time() + 20
s.settimeout(0.5)
while time.time() < end:
    try: held.append(s.accept()[0])
    except OSError: pass
' > "$WORK/silent.port" &
SILENT=$!
for _ in $(seq 1 50); do [[ -s "$WORK/silent.port" ]] && break; sleep 0.1; done
SPORT=$(head -1 "$WORK/silent.port")
tty_out=$(timeout 30 script -qec "'$IMGSEL' select 127.0.0.1:$SPORT/held:v1 --timeout 2.5 \
  --config '$CONFIG' --host-profile '$WORK/host.json'" /dev/null 2>&1)
[[ "$tty_out" == *"imgsel: waiting 1s for GET http://127.0.0.1:$SPORT/v2/held/manifests/v1"* ]] \
  && echo "ok   on a terminal, a held request is named while imgsel waits" \
  || fail "terminal wait notice: $tty_out"
err=$(sel "127.0.0.1:$SPORT/held:v1" --timeout 2.5 2>&1 >/dev/null); rc=$?
[[ $rc == 3 && "$err" != *"waiting"* ]] && echo "ok   off a terminal: no wait notice, exit 3" \
  || fail "no terminal: rc $rc, $err"
kill "$SILENT" 2>/dev/null; wait "$SILENT" 2>/dev/null
CONFIG="$SAVED_CONFIG"

# 5d. A cache directory that cannot be made (under a regular file, as a
# read-only or full file system refuses it): the selection is made without
# the cache (the same choice as with it), and a warning says why.
echo "not a directory" > "$WORK/not-a-dir"
cat > "$WORK/nocache.toml" <<TOML
version = 1
[compat]
cache_dir = "$WORK/not-a-dir/cache"
TOML
want=$(sel "$REF" -o json | field "d['selected']['position']")
err=$(CONFIG="$WORK/nocache.toml" sel "$REF" -o json 2>&1 >"$WORK/nocache.json"); rc=$?
got=$(field "d['selected']['position']" <"$WORK/nocache.json")
[[ $rc == 0 && -n "$want" && "$got" == "$want" && "$err" == *"warning: [compat] cache_dir: "*"running without a disk cache"* ]] \
  && echo "ok   a cache dir that cannot be made: selected without it, with a warning" \
  || fail "unusable cache dir: rc $rc, position $got, $err"

# 6. The registry gone: a pinned, cached selection still works; a tag cannot resolve.
kill "$PID"; wait "$PID" 2>/dev/null; PID=""
got=$(sel "$PINNED" -o json | field "d['selected']['position']")
[[ "$got" == 4 ]] && echo "ok   pinned selection works offline from the cache" || fail "offline pinned: $got"
err=$(sel "$REF" 2>&1 >/dev/null); rc=$?
[[ $rc == 3 && "$err" == *"resolve 127.0.0.1:$PORT/demo:v1"* ]] \
  && echo "ok   unreachable registry: exit 3 naming the reference" || fail "unreachable: rc $rc, $err"

# 7. Bad references are bad input.
err=$(sel "UPPER/Case:tag" 2>&1 >/dev/null); rc=$?
[[ $rc == 2 ]] && echo "ok   bad reference: exit 2" || fail "bad reference: rc $rc ($err)"

if [[ $failures -ne 0 ]]; then echo "$failures failure(s)"; exit 1; fi
echo "all passed"
