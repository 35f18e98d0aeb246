#!/usr/bin/env bash
# deploy/image.py end to end: the layout is valid and reproducible, every
# blob matches its digest, and the binaries run from the unpacked layer
# alone (chroot: no library from the build machine leaks in).
#
#   image_test.sh SOURCE_DIR IMGSELD IMGSEL
set -uo pipefail
ROOT="$1" IMGSELD="$2" IMGSEL="$3"
source "$ROOT/tests/cli/expect.sh"
work="$(mktemp -d)"
# The chroot gets /proc, as a container does (sanitizer runtimes read their
# options from it); unmounted before anything is removed.
trap 'umount "$work/rootfs/proc" 2>/dev/null; rm -rf --one-file-system "$work"' EXIT

# CONDITION; verdict NAME  -- records the condition's status under NAME.
verdict() {
  local rc=$? name="$1"
  if [[ $rc -eq 0 ]]; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}

digest="$(/usr/bin/python3 "$ROOT/deploy/image.py" --imgseld "$IMGSELD" --imgsel "$IMGSEL" \
  --out "$work/image")" || { echo "FAIL image.py exited $?"; exit 1; }
[[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; verdict "prints the manifest digest"
again="$(/usr/bin/python3 "$ROOT/deploy/image.py" --imgseld "$IMGSELD" --imgsel "$IMGSEL" \
  --out "$work/image2")"
[[ "$digest" == "$again" ]]; verdict "reproducible: the same binaries give the same digest"

bad=0
for blob in "$work"/image/blobs/sha256/*; do
  [[ "$(sha256sum "$blob" | cut -d' ' -f1)" == "$(basename "$blob")" ]] || bad=$((bad + 1))
done
[[ $bad -eq 0 ]]; verdict "every blob matches its digest"
grep -q "\"${digest}\"" "$work/image/index.json"; verdict "index.json names the manifest"

if command -v skopeo >/dev/null; then
  config="$(skopeo inspect --config "oci:$work/image:imgseld")"
  grep -q '"/usr/sbin/imgseld"' <<<"$config"; verdict "skopeo reads it: entrypoint"
  grep -q "\"architecture\": \"$(dpkg --print-architecture | sed 's/armhf/arm/;s/ppc64el/ppc64le/')\"" <<<"$config"; verdict "skopeo reads it: platform"
fi

# Bad input: a clear message and exit 2.
out="$(/usr/bin/python3 "$ROOT/deploy/image.py" --imgseld "$work/nope" --imgsel "$IMGSEL" \
  --out "$work/x" 2>&1)"; rc=$?
[[ $rc -eq 2 && "$out" == *"$work/nope"* ]]; verdict "a missing binary is exit 2 with its name"

if [[ $(id -u) -ne 0 ]]; then
  echo "skip chroot checks: not root"
  [[ -n "${IMGSEL_REQUIRE_INTEGRATION:-}" ]] && exit 1
  finish; exit 77
fi
layer="$(/usr/bin/python3 -c '
import json, sys
d = sys.argv[1]
idx = json.load(open(d + "/index.json"))
m = json.load(open(d + "/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
print(m["layers"][0]["digest"][7:])' "$work/image")"
mkdir "$work/rootfs"
tar -xzf "$work/image/blobs/sha256/$layer" -C "$work/rootfs"
mount -t proc proc "$work/rootfs/proc" || { echo "FAIL cannot mount /proc in the chroot"; exit 1; }
[[ "$(chroot "$work/rootfs" /usr/sbin/imgseld --version)" == "imgseld "* ]]; verdict "imgseld runs from the layer alone"
cp "$ROOT/examples/hosts/amd64-v3.json" "$work/rootfs/tmp/host.json"
cp "$ROOT/examples/layout/blobs/sha256/25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7" \
  "$work/rootfs/tmp/index.json"
out="$(chroot "$work/rootfs" /usr/bin/imgsel select --index /tmp/index.json \
  --host-profile /tmp/host.json --output json 2>&1)"; rc=$?
chosen="$(/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["selected"]["digest"])' <<<"$out" 2>/dev/null)"
[[ $rc -eq 0 && "$chosen" == sha256:7619113e33a90ff18f06dfd58cb1490aabc3bb79ad82ba67b3838dbe7d01fe40 ]]; verdict "imgsel selects from the layer alone"
for dir in etc/imgsel run/imgsel var/cache/imgsel tmp; do
  [[ -d "$work/rootfs/$dir" ]]; verdict "mount point /$dir exists"
done
finish
