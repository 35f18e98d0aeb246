#!/usr/bin/env bash
# What deploy/ ships, checked the way an operator would use it: every config
# file passes `imgseld --check-config`, the systemd units pass
# `systemd-analyze verify` without a word, and the paths the units, the
# DaemonSet and the configs name agree with each other.
#
#   shipped_files_test.sh SOURCE_DIR IMGSELD
set -uo pipefail
ROOT="$1" IMGSELD="$(readlink -f "$2")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0

# CONDITION; verdict NAME  -- records the condition's status under NAME.
verdict() {
  local rc=$? name="$1"
  if [[ $rc -eq 0 ]]; then echo "ok   $name"; else echo "FAIL $name"; failures=$((failures + 1)); fi
}

check_config() {  # FILE NAME
  local out
  out="$("$IMGSELD" --config "$1" --check-config 2>&1)"
  [[ $? -eq 0 && "$out" == "$1: ok" ]]; verdict "$2 passes --check-config"
  [[ -z "${out#"$1: ok"}" ]] || echo "     $out"
}

check_config "$ROOT/deploy/imgsel.toml" "deploy/imgsel.toml"
check_config "$ROOT/examples/imgsel.toml" "examples/imgsel.toml"

# The DaemonSet: its ConfigMap, and what its pod runs and mounts.
daemonset="$ROOT/deploy/kubernetes/imgseld-daemonset.yaml"
/usr/bin/python3 - "$daemonset" "$work" <<'PY'
import json, os, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = next(d for d in docs if d["kind"] == "ConfigMap")
open(sys.argv[2] + "/configmap.toml", "w").write(cm["data"]["imgsel.toml"])
ds = next(d for d in docs if d["kind"] == "DaemonSet")
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
volumes = {v["name"]: v for v in pod["volumes"]}
env = {e["name"]: e["value"] for e in c.get("env", [])}
facts = {
    "command": " ".join(c.get("command", [])),
    "args": " ".join(c.get("args", [])),
    "hostPID": str(pod.get("hostPID", False)),
    "privileged": str(c.get("securityContext", {}).get("privileged", False)),
    "os": pod.get("nodeSelector", {}).get("kubernetes.io/os", ""),
    "host_root": env.get("HOST_ROOT", ""),
    "config": env.get("IMGSEL_CONFIG", ""),
    "configmap_key": cm["metadata"]["name"] + "/" + sorted(cm["data"])[0],
    "readiness": " ".join(c.get("readinessProbe", {}).get("exec", {}).get("command", [])),
    "max_unavailable": str(ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"]),
}
for m in c["volumeMounts"]:
    v = volumes[m["name"]]
    if "configMap" in v:
        facts["configmap_mount"] = v["configMap"]["name"] + ":" + m["mountPath"]
# hostPath mounts as "MOUNTPATH HOSTPATH", one a line.
open(sys.argv[2] + "/hostpaths.txt", "w").write("".join(
    f"{m['mountPath']} {volumes[m['name']]['hostPath']['path']}\n"
    for m in c["volumeMounts"] if "hostPath" in volumes[m["name"]]))
open(sys.argv[2] + "/facts.txt", "w").write("".join(f"{k}={v}\n" for k, v in facts.items()))
PY
verdict "the DaemonSet manifest parses"
check_config "$work/configmap.toml" "the DaemonSet's ConfigMap"
fact() { sed -n "s/^$1=//p" "$work/facts.txt"; }

toml_value() {  # FILE KEY -- a `key = "value"` line's value
  sed -n "s/^$2 = \"\(.*\)\"$/\1/p" "$1" | head -1
}
sock_unit="$ROOT/deploy/systemd/imgseld.socket"
api_unit="$ROOT/deploy/systemd/imgseld-api.socket"
svc_unit="$ROOT/deploy/systemd/imgseld.service"
# Each socket unit holds one socket and names it for the role imgseld gives
# it (FileDescriptorName= names every socket of a unit alike).
[[ "$(grep -c '^ListenStream=' "$sock_unit")" == 1 && "$(grep -c '^ListenStream=' "$api_unit")" == 1 ]]
verdict "each socket unit listens on one socket"
grep -qx 'FileDescriptorName=cri' "$sock_unit" && grep -qx 'FileDescriptorName=selector' "$api_unit"
verdict "imgseld.socket is named cri, imgseld-api.socket selector"
grep -qx 'Sockets=imgseld.socket imgseld-api.socket' "$svc_unit" &&
  grep -qx 'Service=imgseld.service' "$api_unit"
verdict "imgseld.service takes both sockets"
grep -qx 'Type=notify' "$svc_unit"; verdict "imgseld.service waits for imgseld's READY=1"
for cfg in "$ROOT/deploy/imgsel.toml" "$work/configmap.toml"; do
  [[ "$(sed -n 's/^ListenStream=//p' "$sock_unit")" == "$(toml_value "$cfg" cri_socket)" &&
     "$(sed -n 's/^ListenStream=//p' "$api_unit")" == "$(toml_value "$cfg" socket)" ]]
  verdict "the socket units listen where $(basename "$cfg") serves"
done

# The probe reads /lib/modules: the unit may not hide it.
! grep -q '^ProtectKernelModules=yes' "$svc_unit"; verdict "imgseld.service leaves /lib/modules readable"

# The DaemonSet runs the installer, which puts imgseld under the node's
# systemd; the pod itself runs no imgseld.
installer="$ROOT/deploy/kubernetes/install-on-host.sh"
rootfs_unit="$ROOT/deploy/kubernetes/imgseld-rootfs.service"
[[ "$(fact command)" == "/bin/busybox sh /usr/share/imgsel/install-on-host.sh" && -z "$(fact args)" ]]
verdict "the DaemonSet runs the installer on the image's busybox"
grep -q '"usr/share/imgsel/install-on-host.sh": "kubernetes/install-on-host.sh"' "$ROOT/deploy/image.py"
verdict "the image carries the installer where the DaemonSet runs it"
grep -q '"usr/share/imgsel/imgseld.service": "kubernetes/imgseld-rootfs.service"' "$ROOT/deploy/image.py" &&
  grep -q '"usr/share/imgsel/imgseld.socket": "systemd/imgseld.socket"' "$ROOT/deploy/image.py" &&
  grep -q '"usr/share/imgsel/imgseld-api.socket": "systemd/imgseld-api.socket"' "$ROOT/deploy/image.py"
verdict "the image carries the units the installer writes"
[[ "$(fact hostPID)" == True && "$(fact privileged)" == True ]]
verdict "the DaemonSet can enter PID 1's namespaces (hostPID, privileged)"
[[ "$(fact os)" == linux ]]; verdict "the DaemonSet runs on Linux nodes only"
config="$(fact config)"
[[ "$(fact configmap_mount)" == "imgseld-config:$(dirname "$config")" &&
   "$(fact configmap_key)" == "imgseld-config/$(basename "$config")" ]]
verdict "IMGSEL_CONFIG is the mounted ConfigMap's imgsel.toml"
# Every directory the installer writes below HOST_ROOT is that node path.
host_root="$(fact host_root)"
bad=""
for dir in $(sed -n 's/^[a-z]*="\$HOST_ROOT\(\/[^"]*\)"$/\1/p' "$installer"); do
  grep -qx "$host_root$dir $dir" "$work/hostpaths.txt" || bad+=" $dir"
done
[[ -n "$(sed -n 's/^[a-z]*="\$HOST_ROOT\(\/[^"]*\)"$/\1/p' "$installer")" && -z "$bad" ]]
verdict "the DaemonSet mounts each node directory the installer writes${bad:+ (not:$bad)}"
[[ "$(sed -n 's/^HOST_ROOT="\${HOST_ROOT:-\(.*\)}"$/\1/p' "$installer")" == "$host_root" &&
   "$(sed -n 's/^IMGSEL_CONFIG="\${IMGSEL_CONFIG:-\(.*\)}"$/\1/p' "$installer")" == "$config" ]]
verdict "the installer's defaults are the DaemonSet's HOST_ROOT and IMGSEL_CONFIG"

# A rollout stops at the first node whose pod is not ready: ready means the
# installer's file and a health check on the node's API socket.
[[ "$(fact max_unavailable)" == 1 && "$(fact readiness)" == *'test -f /tmp/imgsel-ready'* &&
   "$(fact readiness)" == *'imgseld --check-health /host/run/imgsel/imgsel.sock'* ]]
verdict "one node at a time, ready only once the installer and a health check say so"
grep -q '^READY_FILE="${READY_FILE:-/tmp/imgsel-ready}"$' "$installer"
verdict "the readiness probe's file is the installer's READY_FILE"

# The unit the installer writes: imgseld.service line for line, plus the
# lines that run it from the copied root.
root_keys='^(RootDirectory|MountAPIVFS|BindPaths|BindReadOnlyPaths)='
diff <(grep -v '^#' "$svc_unit") <(grep -v '^#' "$rootfs_unit" | grep -Ev "$root_keys") >"$work/drift"
verdict "imgseld-rootfs.service is imgseld.service plus RootDirectory= and its binds"
[[ -s "$work/drift" ]] && sed 's/^/     /' "$work/drift"
[[ "$(sed -n 's/^RootDirectory=//p' "$rootfs_unit")" == /opt/imgsel/current ]] &&
  grep -q '^opt="$HOST_ROOT/opt/imgsel"$' "$installer" && grep -q '"$opt/current"' "$installer"
verdict "RootDirectory= is where the installer points /opt/imgsel/current"
binds="$(sed -n 's/^BindPaths=//p' "$rootfs_unit" | tr ' ' '\n')"
ro_binds="$(sed -n 's/^BindReadOnlyPaths=//p' "$rootfs_unit" | tr ' ' '\n' | sed 's/^-//')"
grep -qx "$(toml_value "$work/configmap.toml" cache_dir)" <<<"$binds"
verdict "the root binds the ConfigMap's cache_dir"
grep -qx "$(dirname "$(toml_value "$work/configmap.toml" cri_socket)")" <<<"$binds" &&
  grep -qx "$(dirname "$(toml_value "$work/configmap.toml" socket)")" <<<"$binds"
verdict "the root binds the sockets' directory"
grep -qx "$(dirname "$(toml_value "$work/configmap.toml" containerd_socket)")" <<<"$binds"
verdict "the root binds containerd's socket directory, not the socket"
grep -qx "$(toml_value "$work/configmap.toml" config_path)" <<<"$ro_binds"
verdict "the root binds the ConfigMap's [registry] config_path"
grep -qx /lib/modules <<<"$ro_binds"; verdict "the root binds /lib/modules"
grep -qx /etc/imgsel <<<"$ro_binds" &&
  grep -q '^ExecStart=/usr/sbin/imgseld --config /etc/imgsel/imgsel.toml$' "$rootfs_unit" &&
  grep -q '^etc="$HOST_ROOT/etc/imgsel"$' "$installer"
verdict "the root binds the config's directory, where the installer puts it"
[[ "$(toml_value "$work/configmap.toml" metrics)" == 127.0.0.1:* ]]
verdict "the ConfigMap serves metrics on 127.0.0.1 only"

# systemd's own reading of the units, with ExecStart on the built binary
# (deploy/dev.sh installs systemd for its systemd-analyze).
[[ -x /usr/bin/systemd-analyze ]]; verdict "systemd-analyze is installed"
if [[ -x /usr/bin/systemd-analyze ]]; then
  mkdir -p "$work/units"
  sed "s|/usr/sbin/imgseld|$IMGSELD|g" "$svc_unit" > "$work/units/imgseld.service"
  cp "$sock_unit" "$api_unit" "$work/units/"
  out="$(cd "$work/units" && timeout 60 systemd-analyze verify --man=no \
    "$work/units/imgseld.socket" "$work/units/imgseld-api.socket" "$work/units/imgseld.service" 2>&1)"
  [[ $? -eq 0 && -z "$out" ]]; verdict "systemd-analyze verify: no error, no warning"
  [[ -z "$out" ]] || echo "     $out"
  mkdir -p "$work/rootfs-units" "$work/root"
  sed -e "s|/usr/sbin/imgseld|$IMGSELD|g" -e "s|^RootDirectory=.*|RootDirectory=$work/root|" \
    "$rootfs_unit" > "$work/rootfs-units/imgseld.service"
  cp "$sock_unit" "$api_unit" "$work/rootfs-units/"
  out="$(cd "$work/rootfs-units" && timeout 60 systemd-analyze verify --man=no \
    "$work/rootfs-units/imgseld.socket" "$work/rootfs-units/imgseld-api.socket" \
    "$work/rootfs-units/imgseld.service" 2>&1)"
  [[ $? -eq 0 && -z "$out" ]]; verdict "systemd-analyze verify of the DaemonSet's units: no error, no warning"
  [[ -z "$out" ]] || echo "     $out"
fi
# The sandbox: systemd's own exposure score, 3.0 or better (lower is better).
if [[ -x /usr/bin/systemd-analyze ]]; then
  for unit in "$work/units/imgseld.service" "$work/rootfs-units/imgseld.service"; do
    score="$(timeout 60 systemd-analyze security --offline=true "$unit" 2>/dev/null |
      sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')"
    [[ -n "$score" ]] && awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'
    verdict "systemd-analyze security of $(basename "$(dirname "$unit")"): $score, 3.0 or better"
  done
fi
# The Docker config under /root stays readable; no capability is kept.
grep -qx 'ProtectHome=read-only' "$svc_unit"; verdict "the Docker config under /root stays readable"
grep -qx 'CapabilityBoundingSet=' "$svc_unit"; verdict "imgseld keeps no capability"
grep -q '^ExecReload=.*--check-config' "$svc_unit"; verdict "systemctl reload checks the config first"
# Under the journal (JOURNAL_STREAM names stderr), lines carry their
# priority, so `journalctl -p err` finds imgseld's errors; elsewhere, JSON.
printf 'version = 1\n[sever]\n' > "$work/bad.toml"
: > "$work/journal.log"
JOURNAL_STREAM="$(stat -c '%d:%i' "$work/journal.log")" "$IMGSELD" --config "$work/bad.toml" 2>>"$work/journal.log"
[[ "$(head -c 4 "$work/journal.log")" == '<3>{' ]]; verdict "an error under the journal is <3>"
"$IMGSELD" --config "$work/bad.toml" 2>"$work/plain.log"
[[ "$(head -c 2 "$work/plain.log")" == '{"' ]]; verdict "an error elsewhere is plain JSON"
# A start limit would fail imgseld.socket along with the service.
grep -qx 'StartLimitIntervalSec=0' "$svc_unit"; verdict "imgseld.service is restarted without a limit"

[[ $failures -eq 0 ]] && echo "all shipped files ok" || echo "$failures failed"
exit $((failures > 0))
