# install-on-host.sh: the imgseld DaemonSet's container. Puts imgseld under
# the node's own systemd, which then holds imgseld's sockets and restarts it;
# this pod serves nothing, so its restarts and its deletion leave the node's
# imgseld running. Runs on busybox alone, from the image deploy/image.py
# builds (it lives there as /usr/share/imgsel/install-on-host.sh):
#
#   /bin/busybox sh /usr/share/imgsel/install-on-host.sh
#
# HOST_ROOT      where the node's / is mounted (default /host); written below
#                it: opt/imgsel, etc/imgsel, etc/systemd/system; read:
#                run/imgsel (imgseld's sockets, for the health check)
# IMGSEL_CONFIG  the ConfigMap's imgsel.toml (default /config/imgsel.toml)
# NSENTER        the command that runs systemctl in the node's namespaces
#                (default: busybox nsenter; tests put a stub here)
# READY_FILE     written once this pod's imgseld serves on the node; the
#                pod's readiness probe needs it (default /tmp/imgsel-ready)
# HEALTH_TIMEOUT seconds the new imgseld has to answer SERVING (default 60)
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
#    reload it when only the config changed (systemctl waits for imgseld's
#    READY=1, Type=notify);
# 5. asks the Selector API socket for its health (imgseld --check-health)
#    until SERVING, at most HEALTH_TIMEOUT seconds. When the restart failed
#    or the health never came: puts the previous root, config and units
#    back (saved in opt/imgsel/.previous before step 2), restarts the
#    previous imgseld and checks it, notes this install's ID in
#    opt/imgsel/.failed (a pod restart does not try it again), and waits
#    without READY_FILE: the pod stays unready, so a rolling update
#    (maxUnavailable 1) stops at this node, which keeps serving;
# 6. on success: removes the older rootfs-*, writes READY_FILE, waits, and
#    exits 0 on SIGTERM, leaving the node's imgseld running.
set -eu

BB=/bin/busybox
HOST_ROOT="${HOST_ROOT:-/host}"
IMGSEL_CONFIG="${IMGSEL_CONFIG:-/config/imgsel.toml}"
NSENTER="${NSENTER:-$BB nsenter}"
SHARE=/usr/share/imgsel
READY_FILE="${READY_FILE:-/tmp/imgsel-ready}"
HEALTH_TIMEOUT="${HEALTH_TIMEOUT:-60}"
UNITS="imgseld.socket imgseld-api.socket imgseld.service"
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
# Nothing left to do until the next image or ConfigMap: sleeps until SIGTERM.
wait_for_term() {
  sleeper=
  trap '[ -z "$sleeper" ] || $BB kill "$sleeper" 2>/dev/null; exit 0' TERM INT
  while :; do
    $BB sleep 86400 &
    sleeper=$!
    wait "$sleeper" || true
  done
}
# Whether the node's imgseld answers SERVING on its API socket within
# HEALTH_TIMEOUT seconds.
serving() {
  i=0
  while [ "$i" -lt "$HEALTH_TIMEOUT" ]; do
    /usr/sbin/imgseld --check-health "$api_socket" >/dev/null 2>&1 && return 0
    $BB sleep 1
    i=$((i + 1))
  done
  /usr/sbin/imgseld --check-health "$api_socket" >&2
}

opt="$HOST_ROOT/opt/imgsel"
units="$HOST_ROOT/etc/systemd/system"
etc="$HOST_ROOT/etc/imgsel"
run="$HOST_ROOT/run/imgsel"
[ -d "$units" ] || die "$units: no such directory (not a systemd node, or $HOST_ROOT is not the node's root)"
for f in /usr/sbin/imgseld "$SHARE/rootfs.list" $(for u in $UNITS; do echo "$SHARE/$u"; done); do
  [ -f "$f" ] || die "$f: missing from this image"
done
$BB rm -f "$READY_FILE"

# 1. The config, checked by the imgseld about to run it.
[ -f "$IMGSEL_CONFIG" ] || die "$IMGSEL_CONFIG: no such file (the ConfigMap's imgsel.toml)"
if ! check="$(/usr/sbin/imgseld --config "$IMGSEL_CONFIG" --check-config 2>&1)"; then
  echo "$check" >&2
  die "$IMGSEL_CONFIG refused; nothing changed on the node (it keeps /etc/imgsel/imgsel.toml)"
fi

# The Selector API socket the health check asks, as the pod sees it.
api_socket="$($BB sed -n 's/^socket *= *"\(.*\)".*$/\1/p' "$IMGSEL_CONFIG" | $BB head -1)"
api_socket="$HOST_ROOT${api_socket:-/run/imgsel/imgsel.sock}"

# 2. The runtime root.
sum="$($BB sha256sum "$SHARE/rootfs.list")"
id="$(echo "${sum%% *}" | $BB cut -c1-16)"
rootfs="rootfs-$id"
# This install: the root, the config and the units together.
install_id="$($BB cat "$SHARE/rootfs.list" "$IMGSEL_CONFIG" $(for u in $UNITS; do echo "$SHARE/$u"; done) |
  $BB sha256sum | $BB cut -c1-16)"
if [ "$($BB cat "$opt/.failed" 2>/dev/null || true)" = "$install_id" ]; then
  log "this image and config ($install_id) did not come up on this node before and were rolled back; not trying again (see opt/imgsel/.failed, journalctl -u imgseld); unready, waiting"
  wait_for_term
fi
changed=no          # the root or a unit: imgseld.service restarts
config_changed=no   # only this: imgseld.service reloads
$BB mkdir -p "$opt" "$etc"
$BB rm -rf "$opt"/.tmp-*  # left by an interrupted copy
# The node as it is now, to put back should the new imgseld not come up.
previous_root="$($BB readlink "$opt/current" 2>/dev/null || true)"
$BB rm -rf "$opt/.previous"
$BB mkdir -p "$opt/.previous"
[ ! -f "$etc/imgsel.toml" ] || $BB cp -p "$etc/imgsel.toml" "$opt/.previous/imgsel.toml"
for unit in $UNITS; do
  [ ! -f "$units/$unit" ] || $BB cp -p "$units/$unit" "$opt/.previous/$unit"
done
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
sockets_changed=""  # socket units that replaced older ones: restarted
for unit in $UNITS; do
  if ! $BB cmp -s "$SHARE/$unit" "$units/$unit"; then
    case "$unit" in *.socket) [ ! -e "$units/$unit" ] || sockets_changed="$sockets_changed $unit" ;; esac
    install_file "$SHARE/$unit" "$units/$unit"
    log "installed /etc/systemd/system/$unit"
    changed=yes
  fi
done

# 4. The node's systemd.
started=yes
host_systemctl daemon-reload
host_systemctl enable --now imgseld.socket imgseld-api.socket || started=no
host_systemctl enable imgseld.service || started=no
if [ "$changed" = yes ]; then
  # Stopping a socket unit stops the service too (Requires=); the socket
  # is closed only for that moment.
  for unit in $sockets_changed; do host_systemctl restart "$unit" || started=no; done
  host_systemctl restart imgseld.service || started=no
elif [ "$config_changed" = yes ]; then
  # The reload checks the file again and sends SIGHUP; should it fail, a
  # restart still applies the file now instead of at the next start.
  host_systemctl reload imgseld.service || host_systemctl restart imgseld.service || started=no
fi

# 5. Serving, or the previous state back.
if [ "$started" = yes ] && serving; then
  $BB rm -f "$opt/.failed"
else
  log "the new imgseld did not come up (start failed or no SERVING on $api_socket within ${HEALTH_TIMEOUT}s); putting the previous one back"
  echo "$install_id" >"$opt/.failed"
  if [ -z "$previous_root" ]; then
    log "no previous install on this node to put back; imgseld stays as installed (journalctl -u imgseld); unready, waiting"
    wait_for_term
  fi
  if [ -f "$opt/.previous/imgsel.toml" ]; then
    install_file "$opt/.previous/imgsel.toml" "$etc/imgsel.toml"
  fi
  restore_sockets=""
  for unit in $UNITS; do
    if [ -f "$opt/.previous/$unit" ]; then
      if ! $BB cmp -s "$opt/.previous/$unit" "$units/$unit"; then
        case "$unit" in *.socket) restore_sockets="$restore_sockets $unit" ;; esac
        install_file "$opt/.previous/$unit" "$units/$unit"
      fi
    else
      # A unit the previous install did not have.
      host_systemctl disable --now "$unit" || true
      $BB rm -f "$units/$unit"
    fi
  done
  $BB rm -f "$opt/.current.$$"
  $BB ln -s "$previous_root" "$opt/.current.$$"
  $BB mv -fT "$opt/.current.$$" "$opt/current"
  log "/opt/imgsel/current -> $previous_root (put back)"
  host_systemctl daemon-reload
  for unit in $restore_sockets; do host_systemctl restart "$unit" || true; done
  host_systemctl restart imgseld.service || true
  if [ "$rootfs" != "$previous_root" ]; then $BB rm -rf "$opt/$rootfs"; fi
  if serving; then
    log "the previous imgseld serves again; this pod stays unready, so the rollout stops here; waiting"
  else
    log "the previous imgseld does not answer either (journalctl -u imgseld); unready, waiting"
  fi
  wait_for_term
fi
for old in "$opt"/rootfs-*; do
  [ -d "$old" ] && [ "${old##*/}" != "$rootfs" ] || continue
  log "removing /opt/imgsel/${old##*/}"
  $BB rm -rf "$old"
done

# 6. Ready; nothing left to do until the next image or ConfigMap.
: >"$READY_FILE"
log "imgseld runs from /opt/imgsel/$rootfs under the node's systemd (journalctl -u imgseld); waiting"
wait_for_term
