#!/usr/bin/env bash
# imgsel developer entry point: deps | build | test | demo | bench | image | package | fuzz | tsan | format | lint
#
#   deploy/dev.sh demo    install what is missing, build the CLI, run `imgsel select`
#                         on the bundled example and print the explanation
#   deploy/dev.sh test    install what is missing, build, run every test
#   deploy/dev.sh image   build the imgseld container image as an OCI layout
#                         in $BUILD_DIR/image and print its digest
#   deploy/dev.sh package build the Debian package (CPack) in $BUILD_DIR/package
#   deploy/dev.sh fuzz [TARGET...]
#                         build the libFuzzer targets (the fuzz preset, clang,
#                         build/fuzz) and run each for FUZZ_SECONDS (20)
#   deploy/dev.sh tsan [CTEST ARGS...]
#                         build Debian's abseil with ThreadSanitizer (once, in
#                         ABSEIL_TSAN_DIR), the tsan preset (build/tsan), and
#                         run the suites that have threads under TSan
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

# Builds the named targets, or everything.
build() {
  cmake --preset "$PRESET" -S "$ROOT" -B "$BUILD_DIR" >/dev/null
  cmake --build "$BUILD_DIR" -j"$(nproc)" ${1:+--target "$@"}
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

# ThreadSanitizer sees a mutex only when the code taking it is
# instrumented; Debian's abseil is not, so every member guarded by an
# absl::Mutex would be reported as a race. The tsan run therefore loads a
# TSan build of the same abseil, from Debian's own source package, ahead of
# the system's (same sonames, same patches).
ABSEIL_TSAN_DIR="${ABSEIL_TSAN_DIR:-$ROOT/build/abseil-tsan}"
# The suites whose code runs on more than one thread (ctest labels; the
# threaded_suites target of tests/CMakeLists.txt builds them), less
# three groups that cannot run under TSan as built here:
# - ProcessMetricsTest.FollowsThisProcess counts this process's threads, and
#   TSan starts a thread of its own at the first pthread_create;
# - SelectAnswerTest.* (one thread) compares messages by reflection, and
#   protobuf's MapFieldBase has two more members when __SANITIZE_THREAD__ is
#   defined (map_field.h), so the tree's map fields no longer match Debian's
#   libprotobuf, built without it: its reflection crashes on them.
# - artifact_round_trips counts sequential round trips through a proxy that
#   holds each request 40 ms; TSan's slowdown of the client adds rounds
#   that are not the client's (its threads are checked by the registry and
#   selector suites).
TSAN_LABELS='^(plugin|selector|registry|integration)$'
TSAN_EXCLUDE='^(ProcessMetricsTest\.FollowsThisProcess|SelectAnswerTest\..*|artifact_round_trips)$'

# Adds deb-src entries for this release's Debian archives when apt has none
# (apt-get source needs them), in a file of its own.
ensure_deb_src() {
  local codename entries
  codename="$(. /etc/os-release && echo "$VERSION_CODENAME")"
  entries="$(/usr/bin/python3 "$ROOT/deploy/deb_src.py" "$codename")"
  [[ -z "$entries" ]] && return 0
  log "adding deb-src entries: /etc/apt/sources.list.d/imgsel-deb-src.sources"
  local sudo; sudo="$(need_root)"
  printf '%s\n' "$entries" | $sudo tee /etc/apt/sources.list.d/imgsel-deb-src.sources >/dev/null
  $sudo apt-get update -qq
}

# Builds, into $ABSEIL_TSAN_DIR/lib, the abseil shared libraries the given
# executables load, from the source of the installed libabsl-dev, with
# -fsanitize=thread. The source and the build are kept and reused.
abseil_tsan() {
  local version src_dir build_dir="$ABSEIL_TSAN_DIR/build" lib_dir="$ABSEIL_TSAN_DIR/lib"
  version="$(dpkg-query -W -f='${Version}' libabsl-dev)"
  src_dir="$ABSEIL_TSAN_DIR/src/$version"
  if [[ ! -f "$src_dir/CMakeLists.txt" ]]; then
    ensure_deb_src
    local fetch="$ABSEIL_TSAN_DIR/src/fetch"
    rm -rf "$fetch" && mkdir -p "$fetch"
    log "apt-get source abseil=$version"
    (cd "$fetch" && apt-get source -qq "abseil=$version" >/dev/null 2>&1) ||
      { log "apt-get source abseil=$version failed"; return 1; }
    rm -rf "$src_dir" && mv "$fetch"/abseil-*/ "$src_dir" && rm -rf "$fetch"
  fi
  # The libraries to build: what the executables load, by name.
  local libs
  mapfile -t libs < <(ldd "$@" 2>/dev/null | grep -o 'libabsl_[a-z0-9_]*\.so\.[0-9]*' | sort -u)
  [[ ${#libs[@]} -gt 0 ]] || { log "no abseil library found in: $*"; return 1; }
  # Debian's shared build (debian/rules): C++17, shared libraries.
  cmake -S "$src_dir" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
    -DCMAKE_CXX_FLAGS="-fsanitize=thread -fno-omit-frame-pointer" \
    -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >/dev/null
  local targets=() lib
  # Target names are the library names without libabsl_ (OUTPUT_NAME absl_NAME).
  for lib in "${libs[@]}"; do lib="${lib#libabsl_}"; targets+=("${lib%%.so*}"); done
  cmake --build "$build_dir" -j"$(nproc)" --target "${targets[@]}"
  rm -rf "$lib_dir" && mkdir -p "$lib_dir"
  find "$build_dir" -name 'libabsl_*.so.*' -exec cp -P -t "$lib_dir" {} +
  for lib in "${libs[@]}"; do
    [[ -e "$lib_dir/$lib" ]] || { log "abseil with TSan: $lib was not built"; return 1; }
  done
  log "abseil with TSan: ${#libs[@]} libraries in $lib_dir"
}

# The tsan preset's own build directory, whatever PRESET says. Every report
# fails the run, also one from a daemon a test started and stopped: each
# process writes its reports to a file of its own, and any file is a failure.
tsan() {
  local dir="$ROOT/build/tsan"
  cmake --preset tsan -S "$ROOT" >/dev/null
  # Only the threaded suites and the binaries they start (tests/CMakeLists.txt).
  cmake --build "$dir" -j"$(nproc)" --target threaded_suites
  local executables
  mapfile -t executables < <(find "$dir" -type f -perm -u+x \( -name '*_test' -o -name imgseld \
    -o -name imgsel \) -not -path '*/CMakeFiles/*')
  abseil_tsan "${executables[@]}"
  local reports="$dir/tsan-reports"
  rm -rf "$reports" && mkdir -p "$reports"
  local status=0
  # setarch -R: TSan's shadow memory needs the layout of a kernel with at
  # most 28 bits of mmap randomisation; without ASLR any kernel fits.
  LD_LIBRARY_PATH="$ABSEIL_TSAN_DIR/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  TSAN_OPTIONS="suppressions=$ROOT/tests/tsan_suppressions.txt log_path=$reports/report second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    setarch "$(uname -m)" -R ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" \
      -L "$TSAN_LABELS" -E "$TSAN_EXCLUDE" "$@" || status=$?
  if compgen -G "$reports/report.*" >/dev/null; then
    cat "$reports"/report.* >&2
    log "ThreadSanitizer: $(cat "$reports"/report.* | grep -c '^WARNING: ThreadSanitizer') reports," \
      "$(cat "$reports"/report.* | grep -c '^==[0-9]*==ERROR: ThreadSanitizer') errors," \
      "in $(ls "$reports" | wc -l) processes ($reports)"
    return 1
  fi
  log "ThreadSanitizer: no reports"
  return "$status"
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
# not pull in gRPC or CLI11 (oci, matcher, probe, config, registry, selector):
# there it costs seconds a file; on plugin/ and cli/ each file would cost
# the whole header tree again for checks that find nothing more.
lint() {
  run-clang-tidy-14 -quiet -p "$BUILD_DIR" -j"$(nproc)" \
    "^$ROOT/(oci|matcher|probe|config|registry|selector)/.*\.cc\$" >"$BUILD_DIR/clang-tidy.log" 2>&1 ||
    { grep -E 'warning:|error:' "$BUILD_DIR/clang-tidy.log" | sort -u >&2; log "clang-tidy failed"; return 1; }
  log "clang-tidy: clean"
}

cmd="${1:-}"; shift || true
case "$cmd" in
  deps) deps ;;
  build) deps; build ;;
  test) test_deps; build; run_tests "$@" ;;
  demo) deps; build imgsel; demo ;;  # the CLI only: the tests and benchmarks wait for `test`
  bench) test_deps; build; bench "$@" ;;
  image) test_deps; build; image ;;
  package) test_deps; build; package ;;
  fuzz) test_deps; fuzz "$@" ;;
  tsan) test_deps; tsan "$@" ;;
  format) install_missing clang-format; format "$@" ;;
  lint) test_deps; build; lint ;;
  *) echo "usage: deploy/dev.sh deps|build|test|demo|bench|image|package|fuzz|tsan|format [--check]|lint" >&2; exit 2 ;;
esac
