#!/usr/bin/env bash
# The module layering of docs/design.md, enforced: each module includes only
# itself and the modules below it. A new arrow upward (matcher including
# registry, say) fails this test, so the design cannot drift by accident.
#
#   oci  <-  matcher  <-  probe, config, registry  <-  selector  <-  plugin, cli
#
# Usage: layering_test.sh SOURCE_DIR
set -uo pipefail
cd "$1" || exit 2

# module: the project modules it may include (third-party headers are free).
declare -A allowed=(
  [oci]="oci"
  [matcher]="oci matcher"
  [probe]="oci matcher probe"
  [config]="oci matcher config"
  [registry]="oci matcher registry"
  [selector]="oci matcher probe config registry selector"
  [plugin]="oci matcher probe config registry selector plugin proto"
  [cli]="oci matcher probe config registry selector cli"
)
modules="oci matcher probe config registry selector plugin cli proto"
failures=0
for m in "${!allowed[@]}"; do
  while IFS= read -r line; do
    file="${line%%:*}"
    inc="$(sed -n 's/.*#include "\([a-z_]*\)\/.*/\1/p' <<<"$line")"
    # Only project modules are checked; generated protos count as "proto".
    [[ " $modules " == *" $inc "* ]] || continue
    if [[ " ${allowed[$m]} " != *" $inc "* ]]; then
      echo "FAIL $file includes $inc/, which $m/ may not (allowed: ${allowed[$m]})"
      failures=$((failures + 1))
    fi
  done < <(grep -H '^#include "' "$m"/*.cc "$m"/*.h 2>/dev/null)
done
# matcher/ does no I/O: no file, socket or process calls.
if grep -nE '\b(fopen|open|ifstream|ofstream|socket|connect|popen|fork|exec[lv]p?|curl_)\s*\(' \
     matcher/*.cc matcher/*.h | grep -v '^\s*//' ; then
  echo "FAIL matcher/ calls I/O (above)"; failures=$((failures + 1))
fi
# oci/ reads and writes files, and does no network I/O.
if grep -nE '\b(socket|connect|bind|listen|accept|getaddrinfo|curl_[a-z_]+)\s*\(|<(curl/curl|sys/socket|netdb)\.h>' \
     oci/*.cc oci/*.h | grep -v '^\s*//' ; then
  echo "FAIL oci/ does network I/O (above)"; failures=$((failures + 1))
fi
[[ $failures -eq 0 ]] && echo "layering ok" || echo "$failures layering violation(s)"
exit $((failures > 0))
