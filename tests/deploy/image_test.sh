#!/usr/bin/env bash
# deploy/image.py end to end: the layout is valid and reproducible, every
# blob matches its digest, and the binaries and the installer's busybox run
# from the unpacked layer alone (chroot: no library from the build machine
# leaks in), whose rootfs.list names every file as it is.
#
#   image_test.sh SOURCE_DIR IMGSELD IMGSEL
set -uo pipefail
ROOT="$1" IMGSELD="$2" IMGSEL="$3"
source "$ROOT/tests/cli/expect.sh"
source "$ROOT/tests/deploy/image_layer.sh"
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
  grep -q '"/usr/share/imgsel/install-on-host.sh"' <<<"$config"; verdict "skopeo reads it: entrypoint"
  grep -q "\"architecture\": \"$(dpkg --print-architecture | sed 's/armhf/arm/;s/ppc64el/ppc64le/')\"" <<<"$config"; verdict "skopeo reads it: platform"
fi

# Bad input: a clear message and exit 2.
out="$(/usr/bin/python3 "$ROOT/deploy/image.py" --imgseld "$work/nope" --imgsel "$IMGSEL" \
  --out "$work/x" 2>&1)"; rc=$?
[[ $rc -eq 2 && "$out" == *"$work/nope"* ]]; verdict "a missing binary is exit 2 with its name"
out="$(/usr/bin/python3 "$ROOT/deploy/image.py" --imgseld "$IMGSELD" --imgsel "$IMGSEL" \
  --busybox "$work/nobusybox" --out "$work/x" 2>&1)"; rc=$?
[[ $rc -eq 2 && "$out" == *"$work/nobusybox"*busybox-static* ]]
verdict "a missing busybox is exit 2 naming it and busybox-static"
out="$(/usr/bin/python3 "$ROOT/deploy/image.py" --imgseld "$IMGSELD" --imgsel "$IMGSEL" \
  --busybox /bin/sh --out "$work/x" 2>&1)"; rc=$?
[[ $rc -eq 2 && "$out" == *"dynamically linked"* ]]; verdict "a dynamically linked busybox is exit 2"

if [[ $(id -u) -ne 0 ]]; then
  echo "skip chroot checks: not root"
  [[ -n "${IMGSEL_REQUIRE_INTEGRATION:-}" ]] && exit 1
  finish; exit 77
fi
unpack_image_layer "$work/image" "$work/rootfs" || { echo "FAIL cannot unpack the layer"; exit 1; }
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
[[ "$(chroot "$work/rootfs" /bin/busybox sh -c 'echo $((6 * 7))')" == 42 ]]
verdict "the installer's busybox sh runs from the layer alone"
for f in install-on-host.sh imgseld.service imgseld.socket imgseld-api.socket rootfs.list; do
  [[ -f "$work/rootfs/usr/share/imgsel/$f" ]]; verdict "/usr/share/imgsel/$f is in the image"
done
bad=0 files=0
while read -r kind path arg; do
  [[ $kind == f ]] || continue
  files=$((files + 1))
  [[ "$(sha256sum "$work/rootfs/$path" 2>/dev/null | cut -d' ' -f1)" == "$arg" ]] || bad=$((bad + 1))
done <"$work/rootfs/usr/share/imgsel/rootfs.list"
[[ $bad -eq 0 && $files -gt 10 ]]; verdict "rootfs.list: every file's sha256 is the layer's"
grep -qx 'f usr/sbin/imgseld [0-9a-f]\{64\}' "$work/rootfs/usr/share/imgsel/rootfs.list" &&
  grep -qx 'f bin/busybox [0-9a-f]\{64\}' "$work/rootfs/usr/share/imgsel/rootfs.list" &&
  grep -qx 'f etc/ssl/certs/ca-certificates.crt [0-9a-f]\{64\}' "$work/rootfs/usr/share/imgsel/rootfs.list" &&
  grep -qx 'l bin/kill busybox' "$work/rootfs/usr/share/imgsel/rootfs.list" &&
  ! grep -q 'usr/share/imgsel' "$work/rootfs/usr/share/imgsel/rootfs.list"
verdict "rootfs.list: imgseld, busybox, /bin/kill and the CA bundle, not the installer"
finish
