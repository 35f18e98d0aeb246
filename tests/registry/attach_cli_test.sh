#!/bin/bash
# imgsel attach end to end: docker-registry on loopback, an image pushed with
# skopeo from an OCI layout, a spec attached twice; the sha256-<hex> tag index
# must list both artifacts. Skips (exit 77) without docker-registry, skopeo,
# curl or python3.
set -euo pipefail
IMGSEL=$1
for tool in docker-registry skopeo curl python3; do
  command -v "$tool" >/dev/null && continue
  [ -n "${IMGSEL_REQUIRE_INTEGRATION:-}" ] && { echo "missing $tool"; exit 1; }
  exit 77
done

work=$(mktemp -d /tmp/imgsel-attach-XXXXXX)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/config.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done

layout=$work/layout
mkdir -p "$layout/blobs/sha256"
echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
put_blob() {  # stdin -> blob; prints "<hex> <size>"
  local tmp=$work/blob.tmp; cat >"$tmp"
  local hex; hex=$(sha256sum "$tmp" | cut -d' ' -f1)
  mv "$tmp" "$layout/blobs/sha256/$hex"
  echo "$hex $(stat -c %s "$layout/blobs/sha256/$hex")"
}
read -r chex csize < <(printf '%s' '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' | put_blob)
read -r mhex msize < <(printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$chex\",\"size\":$csize},\"layers\":[]}" | put_blob)
echo "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"sha256:$mhex\",\"size\":$msize,\"annotations\":{\"org.opencontainers.image.ref.name\":\"v1\"}}]}" >"$layout/index.json"
timeout 60 skopeo copy -q --dest-tls-verify=false "oci:$layout:v1" "docker://127.0.0.1:$port/demo/app:v1"

cat >"$work/spec.yaml" <<'YAML'
version: v1alpha1
compatibilities:
- rules:
  - name: avx2
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions:
        AVX2: {op: Exists}
YAML
ref=127.0.0.1:$port/demo/app:v1
timeout 60 "$IMGSEL" attach "$ref" "$work/spec.yaml" --plain-http --annotation com.example.k=one | grep -q "sha256-$mhex"
timeout 60 "$IMGSEL" attach "$ref" "$work/spec.yaml" --plain-http --annotation com.example.k=two >/dev/null
index=$(curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' \
  "http://127.0.0.1:$port/v2/demo/app/manifests/sha256-$mhex")
[ "$(grep -o '"artifactType":"application/vnd.nfd.image-compatibility.v1alpha1"' <<<"$index" | wc -l)" = 2 ]

# Bad input is exit 2, a registry refusal exit 1.
set +e
"$IMGSEL" attach "$ref" "$work/spec.yaml" --annotation novalue >/dev/null 2>&1; [ $? = 2 ] || exit 1
# A spec nodes could not read is not attached; nor are flags out of range.
: >"$work/empty.yaml"
printf 'version: v1alpha1\ncompatibilities: [\n' >"$work/broken.yaml"
for args in "$work/empty.yaml" "$work/broken.yaml" "$work/spec.yaml --timeout nan" \
    "$work/spec.yaml --timeout 0.0001" "$work/spec.yaml --timeout 1e300" \
    "$work/spec.yaml --media-type bad\ type" "$work/spec.yaml --artifact-type="; do
  # shellcheck disable=SC2086
  out=$(timeout 20 "$IMGSEL" attach "$ref" $args --plain-http 2>&1); rc=$?
  [ $rc = 2 ] || { echo "attach $args: exit $rc, want 2: $out"; exit 1; }
done
out=$(timeout 20 "$IMGSEL" attach "$ref" "$work/broken.yaml" --plain-http 2>&1)
grep -q "broken.yaml:3:" <<<"$out" || { echo "no position in: $out"; exit 1; }
[ "$(grep -o '"artifactType":"application/vnd.nfd.image-compatibility.v1alpha1"' \
  <<<"$(curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' \
  "http://127.0.0.1:$port/v2/demo/app/manifests/sha256-$mhex")" | wc -l)" = 2 ] \
  || { echo "a refused spec reached the registry"; exit 1; }
"$IMGSEL" attach "127.0.0.1:$port/demo/app:absent" "$work/spec.yaml" --plain-http >/dev/null 2>&1; [ $? = 1 ] || exit 1
# Warnings are printed as validate prints them, and the spec is attached.
sed 's/AVX2:/SSE4.2:/' "$work/spec.yaml" >"$work/sse.yaml"
out=$(timeout 20 "$IMGSEL" attach "$ref" "$work/sse.yaml" --plain-http 2>&1) || { echo "attach sse: $out"; exit 1; }
grep -q 'warning: cpu.cpuid element "SSE4.2" is spelled "SSE42" by NFD' <<<"$out" \
  || { echo "no warning in: $out"; exit 1; }
# A layer type imgsel does not read: said to change nothing, not "passed over".
echo "needs a GPU" >"$work/note.txt"
out=$(timeout 20 "$IMGSEL" attach "$ref" "$work/note.txt" --media-type text/plain --plain-http 2>&1) \
  || { echo "attach text: $out"; exit 1; }
grep -q "changes nothing" <<<"$out" || { echo "unexpected: $out"; exit 1; }
# Several profiles in one artifact: a layer each, named after its file.
printf '{"version":"v1alpha1","compatibilities":[{"rules":[{"name":"k","matchFeatures":[{"feature":"kernel.version","matchExpressions":{"major":{"op":"Ge","value":["5"]}}}]}]}]}\n' >"$work/kernel5.json"
printf '{"version":"v1alpha1","compatibilities":[{"weight":9,"rules":[{"name":"k","matchFeatures":[{"feature":"kernel.version","matchExpressions":{"major":{"op":"Ge","value":["6"]}}}]}]}]}\n' >"$work/kernel6.json"
out=$(timeout 20 "$IMGSEL" attach "$ref" "$work/kernel5.json" "$work/kernel6.json" --plain-http \
  --artifact-type application/vnd.oci.image-compatibility.v1 \
  --media-type application/vnd.oci.image-compatibility.nfd.v1alpha1+json 2>&1) \
  || { echo "attach profiles: $out"; exit 1; }
digest=$(grep -o 'Attached sha256:[0-9a-f]*' <<<"$out" | cut -d' ' -f2)
manifest=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://127.0.0.1:$port/v2/demo/app/manifests/$digest")
/usr/bin/python3 -c 'import json,sys; m=json.loads(sys.argv[1]); assert [l["annotations"]["name"] for l in m["layers"]]==["kernel5","kernel6"], m' "$manifest" \
  || { echo "profiles: $manifest"; exit 1; }
out=$(timeout 20 "$IMGSEL" attach "$ref" "$work/kernel5.json" "$work/kernel5.json" --plain-http \
  --media-type application/vnd.oci.image-compatibility.nfd.v1alpha1+json 2>&1); rc=$?
[ $rc = 2 ] && grep -q "a file name of its own" <<<"$out" || { echo "same name twice: $rc $out"; exit 1; }
echo PASS
