#!/usr/bin/env bash
# The DaemonSet's installer (deploy/kubernetes/install-on-host.sh) end to end
# on a fake node: the image deploy/image.py builds is unpacked as the pod's
# root, the fake node's root sits at /host inside it (as the DaemonSet mounts
# it), and the installer runs there on the image's busybox with the
# DaemonSet's ConfigMap, a stub for nsenter logging the node's systemctl
# calls. Checked: what lands on the node and where the units look for it,
# that imgseld runs from the copied root alone, which systemctl calls each
# kind of change makes (first install, nothing new, a new config, a refused
# config, a damaged image, a new image, a new socket unit, a new image whose
# imgseld does not come up and is rolled back), and what systemd itself
# says of the units written. The health checks the installer makes reach a
# real imgseld the test runs on the fake node's /run/imgsel; the stub's
# `systemctl restart imgseld.service` fails while the node's current root is
# not one the test names as good in /stub/good-roots.
#
#   daemonset_install_test.sh SOURCE_DIR IMGSELD IMGSEL
set -uo pipefail
ROOT="$1" IMGSELD="$2" IMGSEL="$3"
source "$ROOT/tests/cli/expect.sh"
source "$ROOT/tests/deploy/image_layer.sh"

# CONDITION; verdict NAME  -- records the condition's status under NAME.
verdict() {
  local rc=$? name="$1"
  if [[ $rc -eq 0 ]]; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}

if [[ $(id -u) -ne 0 ]]; then
  echo "skip: the installer runs in a chroot, which needs root"
  [[ -n "${IMGSEL_REQUIRE_INTEGRATION:-}" ]] && exit 1
  exit 77
fi

work="$(mktemp -d)"
pod="$work/pod"         # the image's layer: the pod's root
host="$pod/host"        # the fake node, where the DaemonSet mounts its /
opt="$host/opt/imgsel"
cleanup() {
  umount "$opt/current/proc" 2>/dev/null
  umount "$pod/proc" 2>/dev/null
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

digest="$(/usr/bin/python3 "$ROOT/deploy/image.py" --imgseld "$IMGSELD" --imgsel "$IMGSEL" \
  --out "$work/image")" || { echo "FAIL image.py exited $?"; exit 1; }
unpack_image_layer "$work/image" "$pod" || { echo "FAIL cannot unpack the layer"; exit 1; }
# The ConfigMap as the pod sees it at /config, and a node with systemd.
/usr/bin/python3 - "$ROOT/deploy/kubernetes/imgseld-daemonset.yaml" "$pod/config/imgsel.toml" <<'PY' ||
import sys, yaml
cm = next(d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "ConfigMap")
open(sys.argv[2], "w").write(cm["data"]["imgsel.toml"])
PY
  { echo "FAIL cannot read the ConfigMap"; exit 1; }
mkdir -p "$host/etc/systemd/system" "$pod/stub"
cat >"$pod/stub/nsenter" <<'EOF'
#!/bin/busybox sh
echo "$*" >>/stub/calls
case "$*" in
  *"systemctl restart imgseld.service")
    [ ! -f /stub/good-roots ] && exit 0
    /bin/busybox grep -qx "$(/bin/busybox readlink /host/opt/imgsel/current)" /stub/good-roots ;;
esac
EOF
chmod 0755 "$pod/stub/nsenter"
mount -t proc proc "$pod/proc" || { echo "FAIL cannot mount /proc in the pod's root"; exit 1; }

# The node's imgseld, as its systemd would run it: the sockets in the fake
# node's /run/imgsel, where the installer's health check looks.
mkdir -p "$host/run/imgsel"
cat >"$work/node-imgsel.toml" <<EOF
version = 1
[server]
socket = "$host/run/imgsel/imgsel.sock"
cri_socket = "$host/run/imgsel/cri.sock"
containerd_socket = "$work/no-containerd.sock"
EOF
"$IMGSELD" --config "$work/node-imgsel.toml" --host-profile "$ROOT/examples/hosts/amd64-v3.json" \
  >"$work/node-imgseld.log" 2>&1 &
node_imgseld=$!
cleanup_imgseld() { kill "$node_imgseld" 2>/dev/null; wait "$node_imgseld" 2>/dev/null; cleanup; }
trap cleanup_imgseld EXIT
for ((i = 0; i < 150; i++)); do
  "$IMGSELD" --check-health "$host/run/imgsel/imgsel.sock" >/dev/null 2>&1 && break
  sleep 0.1
done
"$IMGSELD" --check-health "$host/run/imgsel/imgsel.sock" >/dev/null 2>&1
verdict "(test) the node's imgseld serves" || cat "$work/node-imgseld.log"

NS="-t 1 -m -u -i -n -p -- systemctl"
# run_installer: runs it as the DaemonSet does, until it waits (then SIGTERM)
# or exits; sets rc, $work/out (its output) and $work/calls (systemctl).
run_installer() {
  : >"$pod/stub/calls"
  # Emptied here, not by the redirection below: that one runs in the
  # background child, and the loop could read the last run's "waiting".
  : >"$work/out"
  rm -f "$pod/tmp/imgsel-ready"
  HOST_ROOT=/host IMGSEL_CONFIG=/config/imgsel.toml NSENTER=/stub/nsenter HEALTH_TIMEOUT=3 \
    chroot "$pod" /bin/busybox sh /usr/share/imgsel/install-on-host.sh >>"$work/out" 2>&1 &
  local pid=$! i
  for ((i = 0; i < 600; i++)); do
    grep -q 'waiting$' "$work/out" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  waited=no
  if grep -q 'waiting$' "$work/out" && kill -0 "$pid" 2>/dev/null; then
    waited=yes
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  kill -0 "$pid" 2>/dev/null && { echo "     still running after SIGTERM: killed"; kill -KILL "$pid"; }
  wait "$pid"; rc=$?
  cp "$pod/stub/calls" "$work/calls"
}
calls_are() {  # EXPECTED systemctl ARGUMENTS, one per argument
  local want=""
  for c in "$@"; do want+="$NS $c"$'\n'; done
  [[ "$(cat "$work/calls")" == "${want%$'\n'}" ]]
}
show() { sed 's/^/     /' "$work/out"; sed 's/^/     calls: /' "$work/calls"; }
unit_value() {  # KEY: the installed service's KEY= values, one per line
  sed -n "s/^$1=//p" "$host/etc/systemd/system/imgseld.service"
}

# --- First install -----------------------------------------------------------
run_installer
[[ $rc -eq 0 && $waited == yes ]]; verdict "first install: waits, then SIGTERM ends it with 0"
calls_are daemon-reload "enable --now imgseld.socket imgseld-api.socket" "enable imgseld.service" \
  "restart imgseld.service"
verdict "first install: daemon-reload, enable --now both sockets, restart imgseld.service"
[[ $rc -eq 0 ]] || show
[[ -f "$pod/tmp/imgsel-ready" ]]; verdict "first install: imgseld serves, the pod is ready"

cmp -s "$host/etc/systemd/system/imgseld.socket" "$ROOT/deploy/systemd/imgseld.socket"
verdict "imgseld.socket on the node is deploy/systemd/imgseld.socket"
cmp -s "$host/etc/systemd/system/imgseld-api.socket" "$ROOT/deploy/systemd/imgseld-api.socket"
verdict "imgseld-api.socket on the node is deploy/systemd/imgseld-api.socket"
cmp -s "$host/etc/systemd/system/imgseld.service" "$ROOT/deploy/kubernetes/imgseld-rootfs.service"
verdict "imgseld.service on the node is deploy/kubernetes/imgseld-rootfs.service"
cmp -s "$host/etc/imgsel/imgsel.toml" "$pod/config/imgsel.toml"
verdict "the ConfigMap is the node's /etc/imgsel/imgsel.toml"

target="$(readlink "$opt/current")"
[[ "$target" =~ ^rootfs-[0-9a-f]{16}$ && -d "$opt/$target" ]]
verdict "/opt/imgsel/current is a relative link to rootfs-<16 hex>"
[[ "$(cd "$opt" && echo rootfs-* .tmp-*)" == "$target .tmp-*" ]]
verdict "one root on the node, no temporary copy left"
sum="$(sha256sum "$pod/usr/share/imgsel/rootfs.list" | cut -c1-16)"
[[ "$target" == "rootfs-$sum" ]]; verdict "the root is named by its list's sha256"

rootdir="$(unit_value RootDirectory)"
cur="$host$rootdir"
[[ "$rootdir" == /opt/imgsel/current && -d "$cur" ]]; verdict "RootDirectory= is the copied root"
bad=""
for cmd in $(sed -n 's/^Exec[A-Za-z]*=\([^ ]*\).*/\1/p' "$host/etc/systemd/system/imgseld.service"); do
  [[ -x "$cur$cmd" ]] || bad+=" $cmd"
done
[[ -z "$bad" ]]; verdict "every Exec line's program is in the root${bad:+ (missing:$bad)}"
config="$(unit_value ExecStart | sed -n 's/.*--config \([^ ]*\).*/\1/p')"
[[ "$config" == /etc/imgsel/imgsel.toml && -f "$host$config" ]]
verdict "ExecStart='s --config is the installed config"
bad=""
for path in $(unit_value BindPaths) $(unit_value BindReadOnlyPaths); do
  path="${path#-}"
  [[ -e "$cur$path" ]] || bad+=" $path"
done
[[ -z "$bad" ]]; verdict "every bound path has its mount point in the root${bad:+ (missing:$bad)}"
[[ "$(unit_value BindReadOnlyPaths)" == *"${config%/*}"* ]]; verdict "the config's directory is bound"
bad=0
while read -r kind path arg; do
  [[ $kind == f ]] || continue
  [[ "$(sha256sum "$cur/$path" | cut -d' ' -f1)" == "$arg" ]] &&
    cmp -s "$cur/$path" "$pod/$path" || bad=$((bad + 1))
done <"$pod/usr/share/imgsel/rootfs.list"
[[ $bad -eq 0 ]]; verdict "every file of the list is in the root as the image has it"
[[ ! -e "$cur/usr/share/imgsel" && ! -e "$cur/host" && ! -e "$cur/config" ]]
verdict "the root holds no installer and none of the pod's mount points"

# imgseld from the copied root alone: what RootDirectory= will run.
cp "$host/etc/imgsel/imgsel.toml" "$cur/etc/imgsel/imgsel.toml"
mount -t proc proc "$cur/proc" || echo "     cannot mount /proc in the copied root"
out="$(chroot "$cur" /usr/sbin/imgseld --config /etc/imgsel/imgsel.toml --check-config 2>&1)"
[[ $? -eq 0 && "$out" == "/etc/imgsel/imgsel.toml: ok" ]]
verdict "imgseld --check-config runs from the copied root alone"
[[ "$out" == "/etc/imgsel/imgsel.toml: ok" ]] || echo "     $out"
[[ "$(chroot "$cur" /usr/bin/imgsel --version 2>&1)" == *imgsel* ]]
verdict "imgsel runs from the copied root alone"
chroot "$cur" /bin/kill -0 1; verdict "ExecReload='s /bin/kill runs from the copied root"
umount "$cur/proc"
rm "$cur/etc/imgsel/imgsel.toml"

# systemd's reading of the units as written, the programs on the copied root.
mkdir "$work/units"
sed -e "s|/usr/sbin/imgseld|$cur/usr/sbin/imgseld|g" -e "s|^RootDirectory=.*|RootDirectory=$cur|" \
  "$host/etc/systemd/system/imgseld.service" >"$work/units/imgseld.service"
cp "$host/etc/systemd/system/imgseld.socket" "$host/etc/systemd/system/imgseld-api.socket" \
  "$work/units/"
out="$(cd "$work/units" && timeout 60 systemd-analyze verify --man=no "$work/units/imgseld.socket" \
  "$work/units/imgseld-api.socket" "$work/units/imgseld.service" 2>&1)"
[[ $? -eq 0 && -z "$out" ]]; verdict "systemd-analyze verify of the node's units: no error, no warning"
[[ -z "$out" ]] || echo "     $out"

# --- The pod restarts, nothing new --------------------------------------------
inode="$(stat -c %i "$opt/$target")"
run_installer
[[ $rc -eq 0 && $waited == yes ]]; verdict "nothing new: waits, then SIGTERM ends it with 0"
calls_are daemon-reload "enable --now imgseld.socket imgseld-api.socket" "enable imgseld.service"
verdict "nothing new: no restart, no reload"
[[ "$(stat -c %i "$opt/$target")" == "$inode" ]] && ! grep -q copying "$work/out"
verdict "nothing new: the root is not copied again"

# --- A new ConfigMap ----------------------------------------------------------
good="$(cat "$pod/config/imgsel.toml")"
sed -i 's/^select_timeout = .*/select_timeout = "3s"/' "$pod/config/imgsel.toml"
grep -q '"3s"' "$pod/config/imgsel.toml"; verdict "(test) the ConfigMap is edited"
run_installer
[[ $rc -eq 0 && $waited == yes ]]; verdict "new config: waits, then SIGTERM ends it with 0"
calls_are daemon-reload "enable --now imgseld.socket imgseld-api.socket" "enable imgseld.service" \
  "reload imgseld.service"
verdict "new config: a reload, not a restart"
cmp -s "$host/etc/imgsel/imgsel.toml" "$pod/config/imgsel.toml"; verdict "new config: installed"
[[ "$(readlink "$opt/current")" == "$target" ]]; verdict "new config: the root stays"

# --- A refused ConfigMap ------------------------------------------------------
cp "$host/etc/imgsel/imgsel.toml" "$work/last-good.toml"
sed -i 's/^metrics = .*/metrics = "0.0.0.0:9464"/' "$pod/config/imgsel.toml"
run_installer
[[ $rc -ne 0 && $waited == no ]]; verdict "bad config: exits non-zero at once"
grep -q 'only loopback' "$work/out"; verdict "bad config: says what the check said"
grep -q 'only loopback' "$work/out" || show
cmp -s "$host/etc/imgsel/imgsel.toml" "$work/last-good.toml"; verdict "bad config: the node's file is untouched"
[[ ! -s "$work/calls" ]]; verdict "bad config: no systemctl call"
printf '%s\n' "$good" >"$pod/config/imgsel.toml"

# --- A damaged image: a new list, and a file that is not the one it names ----
echo damaged >>"$pod/usr/bin/imgsel"
sed -i "s|^f usr/bin/imgsel .*|f usr/bin/imgsel $(printf '0%.0s' {1..64})|" \
  "$pod/usr/share/imgsel/rootfs.list"
run_installer
[[ $rc -ne 0 && $waited == no ]] && grep -q 'usr/bin/imgsel: sha256' "$work/out"
verdict "damaged file: exits non-zero naming it"
[[ "$(readlink "$opt/current")" == "$target" && "$(cd "$opt" && echo rootfs-*)" == "$target" ]]
verdict "damaged file: the node keeps its root, no half copy in use"
[[ ! -s "$work/calls" ]]; verdict "damaged file: no systemctl call"

# --- A new image: another root ------------------------------------------------
new_sum="$(sha256sum "$pod/usr/bin/imgsel" | cut -d' ' -f1)"
sed -i "s|^f usr/bin/imgsel .*|f usr/bin/imgsel $new_sum|" "$pod/usr/share/imgsel/rootfs.list"
run_installer
new="$(readlink "$opt/current")"
[[ $rc -eq 0 && $waited == yes && "$new" != "$target" && "$new" == rootfs-* ]]
verdict "new image: a new root, current points at it"
[[ "$(cd "$opt" && echo rootfs-* .tmp-*)" == "$new .tmp-*" ]]; verdict "new image: the old root is removed"
cmp -s "$opt/$new/usr/bin/imgsel" "$pod/usr/bin/imgsel"; verdict "new image: the root has the new files"
calls_are daemon-reload "enable --now imgseld.socket imgseld-api.socket" "enable imgseld.service" \
  "restart imgseld.service"
verdict "new image: imgseld.service restarts, imgseld.socket stays"

# --- A new socket unit --------------------------------------------------------
echo "# changed" >>"$pod/usr/share/imgsel/imgseld.socket"
run_installer
calls_are daemon-reload "enable --now imgseld.socket imgseld-api.socket" "enable imgseld.service" \
  "restart imgseld.socket" "restart imgseld.service"
verdict "new socket unit: both restart"
cmp -s "$host/etc/systemd/system/imgseld.socket" "$pod/usr/share/imgsel/imgseld.socket"
verdict "new socket unit: installed"
[[ $rc -eq 0 ]] || show

# --- A new image whose imgseld does not come up: rolled back ----------------
good_root="$(readlink "$opt/current")"
echo "$good_root" >"$pod/stub/good-roots"
good_units="$(cat "$host/etc/systemd/system/"imgseld*)"
good_config="$(cat "$host/etc/imgsel/imgsel.toml")"
echo "# bad" >>"$pod/usr/share/imgsel/imgseld.service"
echo "# another build" >>"$pod/usr/bin/imgsel"
sed -i "s|^f usr/bin/imgsel .*|f usr/bin/imgsel $(sha256sum "$pod/usr/bin/imgsel" | cut -d' ' -f1)|" \
  "$pod/usr/share/imgsel/rootfs.list"
sed -i 's/^select_timeout = .*/select_timeout = "4s"/' "$pod/config/imgsel.toml"
run_installer
bad_root="rootfs-$(sha256sum "$pod/usr/share/imgsel/rootfs.list" | cut -c1-16)"
[[ $waited == yes && ! -f "$pod/tmp/imgsel-ready" ]]
verdict "bad image: the pod stays, unready (the rollout stops here)"
grep -q 'putting the previous one back' "$work/out" && grep -q 'serves again' "$work/out"
verdict "bad image: says it put the previous imgseld back, and that it serves"
grep -q 'serves again' "$work/out" || show
[[ "$(readlink "$opt/current")" == "$good_root" && ! -e "$opt/$bad_root" ]]
verdict "bad image: current is the previous root again, the bad root is gone"
[[ "$(cat "$host/etc/systemd/system/"imgseld*)" == "$good_units" ]]
verdict "bad image: the previous units are back"
[[ "$(cat "$host/etc/imgsel/imgsel.toml")" == "$good_config" ]]
verdict "bad image: the previous config is back"
calls_are daemon-reload "enable --now imgseld.socket imgseld-api.socket" "enable imgseld.service" \
  "restart imgseld.service" daemon-reload "restart imgseld.service"
verdict "bad image: restart fails, daemon-reload and restart of the previous one"
"$IMGSELD" --check-health "$host/run/imgsel/imgsel.sock" >/dev/null
verdict "bad image: the node's imgseld still serves"
# The pod restarts (a crash, a node reboot): the same install is not tried
# again, and the node is left alone.
run_installer
[[ $waited == yes && ! -s "$work/calls" && ! -f "$pod/tmp/imgsel-ready" ]] &&
  grep -q 'not trying again' "$work/out"
verdict "bad image, pod restarted: not tried again, no systemctl call, still unready"
[[ "$(readlink "$opt/current")" == "$good_root" ]]; verdict "bad image, pod restarted: the node keeps its root"

# --- The node is not a systemd node ------------------------------------------
mv "$host/etc/systemd/system" "$host/etc/systemd/gone"
run_installer
[[ $rc -ne 0 && $waited == no ]] && grep -q 'not a systemd node' "$work/out"
verdict "no /etc/systemd/system: exits non-zero saying so"
mv "$host/etc/systemd/gone" "$host/etc/systemd/system"

finish
