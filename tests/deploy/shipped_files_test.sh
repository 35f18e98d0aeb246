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

# The DaemonSet's ConfigMap, as the pod reads it.
daemonset="$ROOT/deploy/kubernetes/imgseld-daemonset.yaml"
/usr/bin/python3 - "$daemonset" "$work" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
cm = next(d for d in docs if d["kind"] == "ConfigMap")
open(sys.argv[2] + "/configmap.toml", "w").write(cm["data"]["imgsel.toml"])
ds = next(d for d in docs if d["kind"] == "DaemonSet")
c = ds["spec"]["template"]["spec"]["containers"][0]
mounts = {m["mountPath"] for m in c["volumeMounts"]}
open(sys.argv[2] + "/mounts.txt", "w").write("\n".join(sorted(mounts)) + "\n")
open(sys.argv[2] + "/args.txt", "w").write(" ".join(c["args"]) + "\n")
open(sys.argv[2] + "/memory.txt", "w").write(c["resources"]["limits"]["memory"] + "\n")
PY
verdict "the DaemonSet manifest parses"
check_config "$work/configmap.toml" "the DaemonSet's ConfigMap"

toml_value() {  # FILE KEY -- a `key = "value"` line's value
  sed -n "s/^$2 = \"\(.*\)\"$/\1/p" "$1" | head -1
}
sock_unit="$ROOT/deploy/systemd/imgseld.socket"
svc_unit="$ROOT/deploy/systemd/imgseld.service"
listens="$(sed -n 's/^ListenStream=//p' "$sock_unit" | sort | tr '\n' ' ')"
for cfg in "$ROOT/deploy/imgsel.toml" "$work/configmap.toml"; do
  want="$(printf '%s\n' "$(toml_value "$cfg" socket)" "$(toml_value "$cfg" cri_socket)" | sort |
    tr '\n' ' ')"
  [[ "$listens" == "$want" ]]; verdict "imgseld.socket listens where $(basename "$cfg") serves"
done
! grep -q '^FileDescriptorName=' "$sock_unit"; verdict "imgseld.socket names no descriptor"

# The probe reads /lib/modules: neither the unit nor the pod may hide it.
! grep -q '^ProtectKernelModules=yes' "$svc_unit"; verdict "imgseld.service leaves /lib/modules readable"
grep -qx /lib/modules "$work/mounts.txt"; verdict "the DaemonSet mounts /lib/modules"
cache="$(toml_value "$work/configmap.toml" cache_dir)"
grep -qx "$cache" "$work/mounts.txt"; verdict "the DaemonSet mounts the ConfigMap's cache_dir"
grep -qx "$(dirname "$(toml_value "$work/configmap.toml" cri_socket)")" "$work/mounts.txt"
verdict "the DaemonSet mounts the sockets' directory"
grep -qx "$(toml_value "$work/configmap.toml" containerd_socket)" "$work/mounts.txt"
verdict "the DaemonSet mounts containerd's socket"
[[ "$(cat "$work/args.txt")" == "--config /etc/imgsel/imgsel.toml" ]]
verdict "the DaemonSet runs imgseld on the mounted config"
max="$(sed -n 's/^MemoryMax=\([0-9]*\)M$/\1/p' "$svc_unit")"
[[ -n "$max" && "$(cat "$work/memory.txt")" == "${max}Mi" ]]
verdict "the unit's MemoryMax and the DaemonSet's limit agree"

# systemd's own reading of the units, with ExecStart on the built binary
# (deploy/dev.sh installs systemd for its systemd-analyze).
[[ -x /usr/bin/systemd-analyze ]]; verdict "systemd-analyze is installed"
if [[ -x /usr/bin/systemd-analyze ]]; then
  mkdir -p "$work/units"
  sed "s|/usr/sbin/imgseld|$IMGSELD|g" "$svc_unit" > "$work/units/imgseld.service"
  cp "$sock_unit" "$work/units/"
  out="$(cd "$work/units" && timeout 60 systemd-analyze verify --man=no \
    "$work/units/imgseld.socket" "$work/units/imgseld.service" 2>&1)"
  [[ $? -eq 0 && -z "$out" ]]; verdict "systemd-analyze verify: no error, no warning"
  [[ -z "$out" ]] || echo "     $out"
fi
grep -q '^ExecReload=.*--check-config' "$svc_unit"; verdict "systemctl reload checks the config first"

[[ $failures -eq 0 ]] && echo "all shipped files ok" || echo "$failures failed"
exit $((failures > 0))
