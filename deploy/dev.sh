#!/usr/bin/env bash
# imgsel developer entry point: deps | build | test | demo | bench | image | package | fuzz | format | lint
#
#   deploy/dev.sh demo    install what is missing, build, run `imgsel select`
#                         on the bundled example and print the explanation
#   deploy/dev.sh test    install what is missing, build, run every test
#   deploy/dev.sh image   build the imgseld container image as an OCI layout
#                         in $BUILD_DIR/image and print its digest
#   deploy/dev.sh package build the Debian package (CPack) in $BUILD_DIR/package
#   deploy/dev.sh fuzz [TARGET...]
#                         build the libFuzzer targets (the fuzz preset, clang,
#                         build/fuzz) and run each for FUZZ_SECONDS (20)
#
# demo installs only what building needs; test, bench, image and package add
# the real containerd, registry and the other tools of the tests.
#
# Only Debian packages are used. BUILD_DIR and PRESET may be overridden.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PRESET="${PRESET:-default}"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/$PRESET}"

# What building and the demo need, one per line so diffs stay readable.
BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev libabsl-dev
  libsimdjson-dev libhwloc-dev libgtest-dev libgmock-dev libbenchmark-dev
  libtomlplusplus-dev libyaml-cpp-dev libcurl4-openssl-dev libre2-dev
  libcli11-dev zlib1g-dev libssl-dev
  # imgseld: sd_notify and named socket activation
  libsystemd-dev
  # containerd's own protos (images service), compiled at build time
  golang-github-containerd-containerd-dev golang-github-gogo-protobuf-dev
)
# What the tests, the figures and the packages need on top.
TEST_PACKAGES=(
  clang-format clang-tidy
  # integration tests and figures: the real containerd and registry
  containerd runc docker-registry skopeo curl systemd hyperfine
  # tests/deploy: reads the DaemonSet manifest
  python3-yaml
  # the DaemonSet's image: its installer runs on busybox (deploy/image.py)
  busybox-static
  # deploy/dev.sh package: man pages and the Debian package
  help2man dpkg-dev
  # deploy/dev.sh fuzz: the libFuzzer targets (clang's ASan, UBSan, libFuzzer)
  clang-14 libfuzzer-14-dev
)

log() { printf 'dev.sh: %s\n' "$*" >&2; }

need_root() {
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then echo sudo; else
      log "packages missing and not root (no sudo): ${missing[*]}"; exit 1
    fi
  fi
}

# Installs what is missing of the named packages.
install_missing() {
  local missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing: ${missing[*]}"
  local sudo; sudo="$(need_root)"
  export DEBIAN_FRONTEND=noninteractive
  # Refresh the package lists only when an install fails on stale ones.
  if ! $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Debian's docker-registry package starts a registry on every interface;
  # the tests start their own on 127.0.0.1, so a service it started stops.
  if [[ " ${missing[*]} " == *" docker-registry "* ]] && command -v systemctl >/dev/null &&
     systemctl is-active --quiet docker-registry 2>/dev/null; then
    $sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true
  fi
}

deps() { install_missing "${BUILD_PACKAGES[@]}"; }
test_deps() { install_missing "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"; }

build() {
  cmake --preset "$PRESET" -S "$ROOT" >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)"
}

run_tests() {
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
}

demo() {
  local imgsel="$BUILD_DIR/cli/imgsel"
  local ex="$ROOT/examples"
  echo "== imgsel select oci-layout:examples/layout:demo (this host)"
  "$imgsel" select "oci-layout:$ex/layout:demo" --config "$ex/imgsel.toml" || true
  echo
  echo "== the same index for a saved x86-64-v3 host profile, pod using runtime handler nvidia"
  "$imgsel" select "oci-layout:$ex/layout:demo" --config "$ex/imgsel.toml" \
    --host-profile "$ex/hosts/amd64-v3.json" --runtime-handler nvidia || true
}

bench() {
  local out="$BUILD_DIR/bench"
  "$out/matcher_bench" "$@"
}

image() {
  local out="$BUILD_DIR/image" digest
  digest="$(/usr/bin/python3 "$ROOT/deploy/image.py" --imgseld "$BUILD_DIR/plugin/imgseld" \
    --imgsel "$BUILD_DIR/cli/imgsel" --out "$out")"
  local version; version="$("$BUILD_DIR/plugin/imgseld" --version | cut -d' ' -f2)"
  echo "imgseld image: oci:$out:imgseld"
  echo "digest:        $digest"
  echo "push:          skopeo copy --preserve-digests oci:$out:imgseld docker://REGISTRY/imgsel/imgseld:$version"
  echo "DaemonSet:     image: REGISTRY/imgsel/imgseld@$digest"
  echo "pre-load:      see docs/deploy.md, \"The image\" (skopeo oci-archive, ctr import, ctr tag @$digest)"
}

package() {
  (cd "$BUILD_DIR" && cpack -G DEB -B "$BUILD_DIR/package" >/dev/null)
  ls "$BUILD_DIR"/package/imgsel_*.deb
}

# The fuzz preset's own build directory, whatever PRESET says.
fuzz() {
  local dir="$ROOT/build/fuzz"
  cmake --preset fuzz -S "$ROOT" >/dev/null
  cmake --build "$dir" --target fuzz_all -j"$(nproc)"
  "$ROOT/tests/fuzz/run_fuzzers.sh" "$dir" "${FUZZ_SECONDS:-20}" "$@"
}

# The project's C++ files (git's list in a checkout, else every .cc/.h
# outside build/), NUL-separated.
sources() {
  if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z -- '*.cc' '*.h'
  else
    (cd "$ROOT" && find . -path ./build -prune -o \( -name '*.cc' -o -name '*.h' \) -print0)
  fi
}

# `format` rewrites files in place; `format --check` only says which differ
# (and fails), as CI runs it.
format() {
  if [[ "${1:-}" == "--check" ]]; then
    (cd "$ROOT" && sources | xargs -0 clang-format --dry-run --Werror)
  else
    (cd "$ROOT" && sources | xargs -0 clang-format -i)
  fi
}

# clang-tidy with the checked-in .clang-tidy over the modules whose files do
# not pull in gRPC or CLI11 (matcher, probe, config, registry, selector):
# there it costs seconds a file; on plugin/ and cli/ each file would cost
# the whole header tree again for checks that find nothing more.
lint() {
  run-clang-tidy-14 -quiet -p "$BUILD_DIR" -j"$(nproc)" \
    "^$ROOT/(matcher|probe|config|registry|selector)/.*\.cc\$" >"$BUILD_DIR/clang-tidy.log" 2>&1 ||
    { grep -E 'warning:|error:' "$BUILD_DIR/clang-tidy.log" | sort -u >&2; log "clang-tidy failed"; return 1; }
  log "clang-tidy: clean"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  deps) deps ;;
  build) deps; build ;;
  test) test_deps; build; run_tests "$@" ;;
  demo) deps; build; demo ;;
  bench) test_deps; build; bench "$@" ;;
  image) test_deps; build; image ;;
  package) test_deps; build; package ;;
  fuzz) test_deps; fuzz "$@" ;;
  format) install_missing clang-format; format "$@" ;;
  lint) test_deps; build; lint ;;
  *) echo "usage: deploy/dev.sh deps|build|test|demo|bench|image|package|fuzz|format [--check]|lint" >&2; exit 2 ;;
esac
