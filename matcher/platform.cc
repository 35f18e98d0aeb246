#include "matcher/platform.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace imgsel {
namespace {

// Parses "vN" or "N" into N; nullopt when it is not a plain integer.
std::optional<int> VariantNumber(absl::string_view v) {
  if (!v.empty() && v[0] == 'v') v.remove_prefix(1);
  int n = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || ptr != v.data() + v.size() || v.empty()) return std::nullopt;
  return n;
}

// containerd's normalizeArch on lowercase input; the result views either
// static strings or the input.
std::pair<absl::string_view, absl::string_view> NormalizeArchLower(absl::string_view arch,
                                                                   absl::string_view variant) {
  if (arch == "i386") return {"386", ""};
  if (arch == "x86_64" || arch == "x86-64" || arch == "amd64") {
    return {"amd64", variant == "v1" ? absl::string_view() : variant};
  }
  if (arch == "aarch64" || arch == "arm64") {
    if (variant == "8" || variant == "v8" || variant == "v8.0") return {"arm64", ""};
    if (variant == "9" || variant == "9.0" || variant == "v9.0") return {"arm64", "v9"};
    return {"arm64", variant};
  }
  if (arch == "armhf") return {"arm", "v7"};
  if (arch == "armel") return {"arm", "v6"};
  if (arch == "arm") {
    if (variant.empty() || variant == "7") return {"arm", "v7"};
    if (variant == "5") return {"arm", "v5"};
    if (variant == "6") return {"arm", "v6"};
    if (variant == "8") return {"arm", "v8"};
  }
  return {arch, variant};
}

void NormalizeArch(std::string& arch, std::string& variant) {
  arch = absl::AsciiStrToLower(arch);
  variant = absl::AsciiStrToLower(variant);
  auto [a, v] = NormalizeArchLower(arch, variant);
  std::string na(a), nv(v);
  arch = std::move(na);
  variant = std::move(nv);
}

// Lowercases into `buf` only when needed; false when too long to be any
// platform name a host could have.
template <size_t N>
bool LowerView(absl::string_view in, char (&buf)[N], absl::string_view& out) {
  bool has_upper = false;
  for (char c : in) has_upper |= (c >= 'A' && c <= 'Z');
  if (!has_upper) {
    out = in;
    return true;
  }
  if (in.size() > N) return false;
  for (size_t i = 0; i < in.size(); ++i) buf[i] = absl::ascii_tolower(in[i]);
  out = absl::string_view(buf, in.size());
  return true;
}

// An entry's os, architecture and variant as containerd normalises them,
// without allocating: the views point at static names, the entry's own
// strings or the buffers here.
struct NormalNames {
  char os_buf[32], arch_buf[32], variant_buf[32];
  absl::string_view os, arch, variant;
};

// False when a name is too long for the buffers (no platform name is).
bool Normalize(const PlatformView& raw, NormalNames& n) {
  if (!LowerView(raw.os, n.os_buf, n.os) || !LowerView(raw.architecture, n.arch_buf, n.arch) ||
      !LowerView(raw.variant, n.variant_buf, n.variant)) {
    return false;
  }
  if (n.os == "macos") n.os = "darwin";
  std::tie(n.arch, n.variant) = NormalizeArchLower(n.arch, n.variant);
  return true;
}

Platform WithArch(const Platform& base, std::string arch, std::string variant) {
  Platform p;
  p.os = base.os;
  p.os_version = base.os_version;
  p.os_features = base.os_features;
  p.architecture = std::move(arch);
  p.variant = std::move(variant);
  return NormalizePlatform(std::move(p));
}

// containerd's arm64 table: for each variant, the newest minor of each
// major it runs (v9.x runs v9.0-v9.x and v8.0-v8.(x+5), v8.x capped at v8.9).
// A variant not in the table runs nothing, as in containerd.
struct Arm64Versions {
  absl::string_view variant;
  int v9_minor;  // -1: no v9
  int v8_minor;
};
constexpr Arm64Versions kArm64Table[] = {
    {"v8", -1, 0},   {"v8.0", -1, 0}, {"v8.1", -1, 1}, {"v8.2", -1, 2}, {"v8.3", -1, 3},
    {"v8.4", -1, 4}, {"v8.5", -1, 5}, {"v8.6", -1, 6}, {"v8.7", -1, 7}, {"v8.8", -1, 8},
    {"v8.9", -1, 9}, {"v9", 0, 5},    {"v9.0", 0, 5},  {"v9.1", 1, 6},  {"v9.2", 2, 7},
    {"v9.3", 3, 8},  {"v9.4", 4, 9},  {"v9.5", 5, 9},  {"v9.6", 6, 9},  {"v9.7", 7, 9},
};

// Loops over numbered variants stop here: no real amd64 level or arm
// version comes close, and a hostile number must not build a huge vector.
constexpr int kMaxVariantNumber = 16;

// containerd's platformVector, on a normalised platform.
void AppendVector(const Platform& p, std::vector<Platform>& out) {
  if (p.architecture == "amd64") {
    out.push_back(p);
    if (auto level = VariantNumber(p.variant); level && *level > 1) {
      for (int v = std::min(*level - 1, kMaxVariantNumber); v >= 1; --v) {
        out.push_back(WithArch(p, "amd64", absl::StrCat("v", v)));
      }
    }
    out.push_back(WithArch(p, "386", ""));
  } else if (p.architecture == "arm") {
    out.push_back(p);
    if (auto level = VariantNumber(p.variant); level && *level > 5) {
      for (int v = std::min(*level - 1, kMaxVariantNumber); v >= 5; --v) {
        out.push_back(WithArch(p, "arm", absl::StrCat("v", v)));
      }
    }
  } else if (p.architecture == "arm64") {
    const absl::string_view variant =
        p.variant.empty() ? absl::string_view("v8") : absl::string_view(p.variant);
    const Arm64Versions* row = nullptr;
    for (const auto& r : kArm64Table) {
      if (r.variant == variant) row = &r;
    }
    if (row == nullptr) return;
    for (int m = row->v9_minor; m >= 0; --m) {
      out.push_back(WithArch(p, "arm64", m == 0 ? "v9" : absl::StrCat("v9.", m)));
    }
    for (int m = row->v8_minor; m >= 0; --m) {
      out.push_back(WithArch(p, "arm64", m == 0 ? "v8" : absl::StrCat("v8.", m)));
    }
    // Every arm64 runs 32-bit arm/v8 and below.
    AppendVector(WithArch(p, "arm", "v8"), out);
  } else {
    out.push_back(p);
  }
}

// containerd's Windows version rule (checkWindowsHostAndContainerCompat):
// major and minor equal; a host before Windows Server 2022 (build 20348)
// runs only its own build; a later host runs every build from the newest
// LTSC release before it (2022: 20348, 2025: 26100) up to its own.
struct WindowsVersion {
  int major = 0, minor = 0, build = 0;
  bool empty() const { return major == 0 && minor == 0 && build == 0; }
};

// "10.0.17763.1234" -> {10, 0, 17763}; all zero when unreadable, as
// containerd's getWindowsOSVersion (uint8 major and minor, uint16 build).
WindowsVersion ParseWindowsVersion(absl::string_view v) {
  std::vector<absl::string_view> parts = absl::StrSplit(v, '.');
  if (parts.size() < 3) return {};
  auto num = [](absl::string_view s, int max) -> std::optional<int> {
    if (s.empty() || s.size() > 5) return std::nullopt;
    int n = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + (c - '0');
    }
    if (n > max) return std::nullopt;
    return n;
  };
  auto major = num(parts[0], 255), minor = num(parts[1], 255), build = num(parts[2], 65535);
  if (!major || !minor || !build) return {};
  return {*major, *minor, *build};
}

bool WindowsCompatible(const WindowsVersion& host, const WindowsVersion& ctr) {
  constexpr int kLtsc2022 = 20348;
  constexpr int kLtscReleases[] = {20348, 26100};  // ascending
  if (host.major != ctr.major || host.minor != ctr.minor) return false;
  if (host.build < kLtsc2022) return host.build == ctr.build;
  int supported = kLtsc2022;
  for (int i = static_cast<int>(std::size(kLtscReleases)) - 1; i >= 0; --i) {
    if (host.build > kLtscReleases[i]) {
      supported = kLtscReleases[i];
      break;
    }
  }
  return supported <= ctr.build && ctr.build <= host.build;
}

uint64_t NextMatcherId() {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

Platform NormalizePlatform(Platform p) {
  p.os = absl::AsciiStrToLower(p.os);
  if (p.os == "macos") p.os = "darwin";
  NormalizeArch(p.architecture, p.variant);
  std::sort(p.os_features.begin(), p.os_features.end());
  p.os_features.erase(std::unique(p.os_features.begin(), p.os_features.end()), p.os_features.end());
  return p;
}

std::string FormatPlatform(const Platform& p) {
  if (p.os.empty() && p.architecture.empty()) return "unknown";
  std::string out = absl::StrCat(p.os, "/", p.architecture);
  if (!p.variant.empty()) absl::StrAppend(&out, "/", p.variant);
  return out;
}

void AppendPlatform(const PlatformView& raw, absl::FunctionRef<void(absl::string_view)> append) {
  NormalNames n;
  if (!Normalize(raw, n)) {
    Platform p;  // names too long for the buffers: the owning path
    p.os = std::string(raw.os);
    p.architecture = std::string(raw.architecture);
    p.variant = std::string(raw.variant);
    append(FormatPlatform(NormalizePlatform(std::move(p))));
    return;
  }
  if (n.os.empty() && n.arch.empty()) {
    append("unknown");
    return;
  }
  append(n.os);
  append("/");
  append(n.arch);
  if (!n.variant.empty()) {
    append("/");
    append(n.variant);
  }
}

std::string FormatPlatform(const PlatformView& raw) {
  std::string out;
  AppendPlatform(raw, [&out](absl::string_view s) { out.append(s.data(), s.size()); });
  return out;
}

absl::StatusOr<Platform> ParsePlatformSpecifier(absl::string_view specifier) {
  std::vector<std::string> parts = absl::StrSplit(specifier, '/');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty() ||
      (parts.size() == 3 && parts[2].empty())) {
    return absl::InvalidArgumentError(
        absl::StrCat("platform \"", specifier, "\": expected os/architecture[/variant]"));
  }
  Platform p;
  p.os = parts[0];
  p.architecture = parts[1];
  if (parts.size() == 3) p.variant = parts[2];
  return NormalizePlatform(std::move(p));
}

PlatformMatcher::PlatformMatcher(const Platform& host)
    : id_(NextMatcherId()), host_(NormalizePlatform(host)) {
  AppendVector(host_, vector_);
}

bool PlatformMatcher::OsVersionMatches(absl::string_view entry_version) const {
  if (host_.os != "windows" || entry_version.empty()) return true;
  const WindowsVersion host = ParseWindowsVersion(host_.os_version);
  if (host.empty()) return true;  // host version unknown: containerd matches any
  return WindowsCompatible(host, ParseWindowsVersion(entry_version));
}

std::optional<int> PlatformMatcher::Rank(const PlatformView& raw, PlatformMiss* why) const {
  if (why) *why = PlatformMiss::kNone;
  auto miss = [why](PlatformMiss m) -> std::optional<int> {
    if (why) *why = m;
    return std::nullopt;
  };
  // Normalised without allocating: this runs once per index entry.
  NormalNames n;
  if (!Normalize(raw, n)) return miss(PlatformMiss::kPlatform);
  // containerd: an empty os means the host's own.
  const absl::string_view os = n.os.empty() ? absl::string_view(host_.os) : n.os;
  const absl::string_view arch = n.arch, variant = n.variant;
  std::optional<int> rank;
  for (size_t i = 0; i < vector_.size(); ++i) {
    const Platform& want = vector_[i];
    if (want.os == os && want.architecture == arch && want.variant == variant) {
      rank = static_cast<int>(i);
      break;
    }
  }
  if (!rank) return miss(PlatformMiss::kPlatform);
  if (!OsVersionMatches(raw.os_version)) return miss(PlatformMiss::kOsVersion);
  if (!raw.os_features.empty() && !MissingOsFeatures(raw).empty()) {
    return miss(PlatformMiss::kOsFeatures);
  }
  return rank;
}

std::vector<absl::string_view> PlatformMatcher::MissingOsFeatures(const PlatformView& raw) const {
  std::vector<absl::string_view> missing;
  for (absl::string_view f : raw.os_features) {
    // containerd on a Windows host does not count win32k (older Windows
    // images list it; every host has it).
    if (host_.os == "windows" && f == "win32k") continue;
    if (std::binary_search(host_.os_features.begin(), host_.os_features.end(), f,
                           [](absl::string_view a, absl::string_view b) { return a < b; })) {
      continue;
    }
    if (std::find(missing.begin(), missing.end(), f) == missing.end()) missing.push_back(f);
  }
  std::sort(missing.begin(), missing.end());
  return missing;
}

std::optional<int> PlatformMatcher::Rank(const Platform& raw) const {
  // One matching path: the owning form is viewed and ranked like an entry.
  std::vector<absl::string_view> os_features(raw.os_features.begin(), raw.os_features.end());
  PlatformView view;
  view.os = raw.os;
  view.architecture = raw.architecture;
  view.variant = raw.variant;
  view.os_version = raw.os_version;
  view.os_features = os_features;
  return Rank(view);
}

}  // namespace imgsel
