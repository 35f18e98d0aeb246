# install-on-host.sh: the imgseld DaemonSet's container. Puts imgseld under
# the node's own systemd, which then holds imgseld's sockets and restarts it;
# this pod serves nothing, so its restarts and its deletion leave the node's
# imgseld running. Runs on busybox alone, from the image deploy/image.py
# builds (it lives there as /usr/share/imgsel/install-on-host.sh):
#
#   /bin/busybox sh /usr/share/imgsel/install-on-host.sh
#
# HOST_ROOT      where the node's / is mounted (default /host); written below
#                it: opt/imgsel, etc/imgsel, etc/systemd/system
# IMGSEL_CONFIG  the ConfigMap's imgsel.toml (default /config/imgsel.toml)
# NSENTER        the command that runs systemctl in the node's namespaces
#                (default: busybox nsenter; tests put a stub here)
#
# In order:
# 1. checks IMGSEL_CONFIG with this image's imgseld (--check-config); a
#    refused file changes nothing on the node and ends the script with the
#    check's message and exit 1 (the pod crash-loops, the node keeps running
#    its last good config);
# 2. copies the runtime root listed in rootfs.list to
#    HOST_ROOT/opt/imgsel/rootfs-ID, ID the first 16 hex digits of the list's
#    sha256, unless it is there: into a temporary directory first, each file
#    checked against its sha256, then renamed, so a half copy is never used;
#    points opt/imgsel/current at it (a new symlink renamed over the old);
# 3. installs the config as HOST_ROOT/etc/imgsel/imgsel.toml, and the units
#    imgseld.socket and imgseld.service in HOST_ROOT/etc/systemd/system,
#    each only when it differs, each renamed into place;
# 4. in the node's namespaces: systemctl daemon-reload, enable --now
#    imgseld.socket, enable imgseld.service; then restart imgseld.service
#    when the root or a unit changed (imgseld.socket too when it changed), or
#    reload it when only the config changed; removes the older rootfs-*;
# 5. waits, and exits 0 on SIGTERM, leaving the node's imgseld running.
set -eu

BB=/bin/busybox
HOST_ROOT="${HOST_ROOT:-/host}"
IMGSEL_CONFIG="${IMGSEL_CONFIG:-/config/imgsel.toml}"
NSENTER="${NSENTER:-$BB nsenter}"
SHARE=/usr/share/imgsel
# systemctl is looked up after nsenter entered the node's mount namespace:
# /bin on a node without merged /usr.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { echo "install-on-host: $*" >&2; }
die() { log "$*"; exit 1; }
host_systemctl() {
  log "systemctl $*"
  $NSENTER -t 1 -m -u -i -n -p -- systemctl "$@"
}
parent_of() {  # PATH: makes its parent directory
  case "$1" in */*) $BB mkdir -p "${1%/*}" ;; esac
}
install_file() {  # SOURCE DEST: DEST replaced in one rename, mode 0644
  $BB cp "$1" "$2.tmp.$$"
  $BB chmod 0644 "$2.tmp.$$"
  $BB mv -f "$2.tmp.$$" "$2"
}

opt="$HOST_ROOT/opt/imgsel"
units="$HOST_ROOT/etc/systemd/system"
etc="$HOST_ROOT/etc/imgsel"
[ -d "$units" ] || die "$units: no such directory (not a systemd node, or $HOST_ROOT is not the node's root)"
for f in /usr/sbin/imgseld "$SHARE/rootfs.list" "$SHARE/imgseld.service" "$SHARE/imgseld.socket"; do
  [ -f "$f" ] || die "$f: missing from this image"
done

# 1. The config, checked by the imgseld about to run it.
[ -f "$IMGSEL_CONFIG" ] || die "$IMGSEL_CONFIG: no such file (the ConfigMap's imgsel.toml)"
if ! check="$(/usr/sbin/imgseld --config "$IMGSEL_CONFIG" --check-config 2>&1)"; then
  echo "$check" >&2
  die "$IMGSEL_CONFIG refused; nothing changed on the node (it keeps /etc/imgsel/imgsel.toml)"
fi

# 2. The runtime root.
sum="$($BB sha256sum "$SHARE/rootfs.list")"
id="$(echo "${sum%% *}" | $BB cut -c1-16)"
rootfs="rootfs-$id"
changed=no          # the root or a unit: imgseld.service restarts
socket_changed=no   # imgseld.socket's unit replaced an older one
config_changed=no   # only this: imgseld.service reloads
$BB mkdir -p "$opt" "$etc"
$BB rm -rf "$opt"/.tmp-*  # left by an interrupted copy
if [ ! -d "$opt/$rootfs" ]; then
  tmp="$opt/.tmp-$rootfs"
  log "copying imgseld's root to /opt/imgsel/$rootfs"
  while read -r kind path arg; do
    case "$kind" in
      '' | '#'*) ;;
      d) $BB mkdir -p "$tmp/$path" ;;
      e) parent_of "$tmp/$path"; : >"$tmp/$path" ;;
      l) parent_of "$tmp/$path"; $BB ln -s "$arg" "$tmp/$path" ;;
      f)
        parent_of "$tmp/$path"
        $BB cp -p "/$path" "$tmp/$path"
        got="$($BB sha256sum "$tmp/$path")"
        [ "${got%% *}" = "$arg" ] || die "/$path: sha256 ${got%% *}, rootfs.list says $arg"
        ;;
      *) die "$SHARE/rootfs.list: unknown entry '$kind $path'" ;;
    esac
  done <"$SHARE/rootfs.list"
  $BB mv -T "$tmp" "$opt/$rootfs"
  changed=yes
fi
if [ "$($BB readlink "$opt/current" 2>/dev/null || true)" != "$rootfs" ]; then
  $BB rm -f "$opt/.current.$$"
  $BB ln -s "$rootfs" "$opt/.current.$$"
  $BB mv -fT "$opt/.current.$$" "$opt/current"
  log "/opt/imgsel/current -> $rootfs"
  changed=yes
fi

# 3. The config and the units.
if ! $BB cmp -s "$IMGSEL_CONFIG" "$etc/imgsel.toml"; then
  install_file "$IMGSEL_CONFIG" "$etc/imgsel.toml"
  log "installed /etc/imgsel/imgsel.toml"
  config_changed=yes
fi
for unit in imgseld.socket imgseld.service; do
  if ! $BB cmp -s "$SHARE/$unit" "$units/$unit"; then
    if [ "$unit" = imgseld.socket ] && [ -e "$units/$unit" ]; then socket_changed=yes; fi
    install_file "$SHARE/$unit" "$units/$unit"
    log "installed /etc/systemd/system/$unit"
    changed=yes
  fi
done

# 4. The node's systemd.
host_systemctl daemon-reload
host_systemctl enable --now imgseld.socket
host_systemctl enable imgseld.service
if [ "$changed" = yes ]; then
  # Stopping the socket unit stops the service too (Requires=); the socket
  # is closed only for that moment.
  if [ "$socket_changed" = yes ]; then host_systemctl restart imgseld.socket; fi
  host_systemctl restart imgseld.service
elif [ "$config_changed" = yes ]; then
  # The reload checks the file again and sends SIGHUP; should it fail, a
  # restart still applies the file now instead of at the next start.
  host_systemctl reload imgseld.service || host_systemctl restart imgseld.service
fi
for old in "$opt"/rootfs-*; do
  [ -d "$old" ] && [ "${old##*/}" != "$rootfs" ] || continue
  log "removing /opt/imgsel/${old##*/}"
  $BB rm -rf "$old"
done

# 5. Nothing left to do until the next image or ConfigMap.
log "imgseld runs from /opt/imgsel/$rootfs under the node's systemd (journalctl -u imgseld); waiting"
sleeper=
trap '[ -z "$sleeper" ] || $BB kill "$sleeper" 2>/dev/null; exit 0' TERM INT
while :; do
  $BB sleep 86400 &
  sleeper=$!
  wait "$sleeper" || true
done
