#!/usr/bin/env bash
# The Debian package as an operator meets it: install it with dpkg, check
# the installed config with the installed imgseld, remove and purge it, and
# nothing of it is left behind. Changes the machine it runs on (root): run
# by .ci/run on a throwaway machine, after `deploy/dev.sh package`.
# Usage: package_test.sh PACKAGE.deb
set -uo pipefail
DEB="$1"
failures=0
verdict() { if [[ $? -eq 0 ]]; then echo "ok   $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi; }

if [[ $(id -u) -ne 0 ]]; then echo "package_test: needs root (dpkg -i)"; exit 1; fi
if dpkg-query -W imgsel >/dev/null 2>&1; then echo "package_test: imgsel is installed already"; exit 1; fi

# What the package holds, to look for afterwards.
mapfile -t paths < <(dpkg-deb -c "$DEB" | awk '{print $6}' | sed 's|^\.||' | grep -v '/$')
[[ ${#paths[@]} -gt 10 ]]; verdict "the package lists its files (${#paths[@]})"

out="$(dpkg -i "$DEB" 2>&1)"; verdict "dpkg -i installs it"
[[ -x /usr/sbin/imgseld && -x /usr/bin/imgsel ]]; verdict "both binaries are installed"
out="$(/usr/sbin/imgseld --config /etc/imgsel/imgsel.toml --check-config 2>&1)"
[[ $? -eq 0 && "$out" == "/etc/imgsel/imgsel.toml: ok" ]]; verdict "the installed imgseld reads the installed config: $out"
[[ "$(/usr/bin/imgsel --version)" == imgsel* ]]; verdict "imgsel --version"
[[ -f /usr/lib/systemd/system/imgseld.service && -f /usr/lib/systemd/system/imgseld.socket &&
   -f /usr/lib/systemd/system/imgseld-api.socket ]]
verdict "the units are installed"
grep -q '^/etc/imgsel/imgsel.toml$' /var/lib/dpkg/info/imgsel.conffiles; verdict "imgsel.toml is a conffile"
[[ -s /usr/share/man/man8/imgseld.8 && -s /usr/share/man/man1/imgsel.1 ]]; verdict "man pages"
[[ -s /usr/share/bash-completion/completions/imgsel ]]; verdict "bash completion"
bash -n /usr/share/bash-completion/completions/imgsel; verdict "the completion script parses"
! readelf -S /usr/sbin/imgseld | grep -q '\.debug_info' && ! readelf -S /usr/bin/imgsel | grep -q '\.debug_info'
verdict "binaries carry no debug info"

out="$(dpkg --remove imgsel 2>&1)"; verdict "dpkg --remove"
[[ ! -e /usr/sbin/imgseld && ! -e /usr/bin/imgsel ]]; verdict "the binaries are gone after remove"
[[ -f /etc/imgsel/imgsel.toml ]]; verdict "the conffile stays after remove"
out="$(dpkg --purge imgsel 2>&1)"; verdict "dpkg --purge"
left=()
for p in "${paths[@]}"; do [[ -e "$p" ]] && left+=("$p"); done
[[ ${#left[@]} -eq 0 ]]; verdict "nothing of the package is left after purge (${left[*]:-none})"
[[ ! -e /etc/imgsel && ! -e /var/cache/imgsel ]]; verdict "no /etc/imgsel or cache directory after purge"

# A changed config survives a remove and an upgrade-style reinstall.
dpkg -i "$DEB" >/dev/null 2>&1
echo '# changed by the operator' >> /etc/imgsel/imgsel.toml
dpkg --remove imgsel >/dev/null 2>&1
grep -q 'changed by the operator' /etc/imgsel/imgsel.toml; verdict "a changed config is kept on remove"
dpkg --purge imgsel >/dev/null 2>&1
[[ ! -e /usr/sbin/imgseld ]]; verdict "purged again"

[[ $failures -eq 0 ]] && echo "package ok" || echo "$failures failed"
exit $((failures > 0))
