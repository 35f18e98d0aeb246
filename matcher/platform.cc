#include "matcher/platform.h"

#include <algorithm>
#include <charconv>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "matcher/index.h"

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

// "10.0.17763.1234" -> "10.0.17763"; empty when it has fewer than three parts.
std::string WindowsBuildPrefix(absl::string_view version) {
  std::vector<absl::string_view> parts = absl::StrSplit(version, '.');
  if (parts.size() < 3) return "";
  return absl::StrCat(parts[0], ".", parts[1], ".", parts[2]);
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
    return {"arm64", variant == "8" || variant == "v8" ? absl::string_view() : variant};
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

// containerd's platformVector, on a normalised platform.
void AppendVector(const Platform& p, std::vector<Platform>& out) {
  out.push_back(p);
  if (p.architecture == "amd64") {
    if (auto level = VariantNumber(p.variant); level && *level > 1) {
      for (int v = *level - 1; v >= 1; --v) {
        out.push_back(WithArch(p, "amd64", absl::StrCat("v", v)));
      }
    }
    out.push_back(WithArch(p, "386", ""));
  } else if (p.architecture == "arm") {
    if (auto level = VariantNumber(p.variant); level && *level > 5) {
      for (int v = *level - 1; v >= 5; --v) out.push_back(WithArch(p, "arm", absl::StrCat("v", v)));
    }
  } else if (p.architecture == "arm64") {
    std::string variant = p.variant.empty() ? "v8" : p.variant;
    absl::string_view major_part = variant, minor_part;
    bool has_minor = false;
    if (size_t dot = variant.find('.'); dot != std::string::npos) {
      major_part = absl::string_view(variant).substr(0, dot);
      minor_part = absl::string_view(variant).substr(dot + 1);
      has_minor = true;
    }
    auto major = VariantNumber(major_part);
    if (major && *major >= 8) {
      int minor = 0;
      // containerd only reads single-digit minors ("v8.2", not "v8.10").
      if (variant.size() == 4 && has_minor) {
        if (auto m = VariantNumber(minor_part)) minor = *m;
      }
      int arm_major = *major;
      if (arm_major == 9) {
        for (int m = minor - 1; m >= 0; --m) {
          out.push_back(WithArch(p, "arm64", m == 0 ? "v9" : absl::StrCat("v9.", m)));
        }
        // v9.0 diverged from v8.5: v9.x is compatible with v8.(x+5).
        minor += 5;
        arm_major = 8;
        out.push_back(WithArch(p, "arm64", absl::StrCat("v8.", minor)));
      }
      for (int m = minor - 1; m >= 0; --m) {
        out.push_back(
            WithArch(p, "arm64",
                     m == 0 ? absl::StrCat("v", arm_major) : absl::StrCat("v", arm_major, ".", m)));
      }
    }
    if (variant.rfind("v8.", 0) == 0 || variant.rfind("v9.", 0) == 0) variant = "v8";
    AppendVector(WithArch(p, "arm", variant), out);
  }
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

PlatformMatcher::PlatformMatcher(const Platform& host) : host_(NormalizePlatform(host)) {
  AppendVector(host_, vector_);
}

bool PlatformMatcher::OsVersionMatches(absl::string_view entry_version) const {
  if (host_.os != "windows" || entry_version.empty()) return true;
  std::string host_build = WindowsBuildPrefix(host_.os_version);
  if (host_build.empty()) return true;  // host version unknown: containerd matches any
  return WindowsBuildPrefix(entry_version) == host_build;
}

std::optional<int> PlatformMatcher::Rank(const PlatformView& raw) const {
  // Normalised without allocating: this runs once per index entry.
  NormalNames n;
  if (!Normalize(raw, n)) return std::nullopt;
  // containerd: an empty os means the host's own.
  const absl::string_view os = n.os.empty() ? absl::string_view(host_.os) : n.os;
  const absl::string_view arch = n.arch, variant = n.variant;
  if (!OsVersionMatches(raw.os_version)) return std::nullopt;
  if (!raw.os_features.empty()) {
    std::vector<absl::string_view> wanted(raw.os_features.begin(), raw.os_features.end());
    std::sort(wanted.begin(), wanted.end());
    wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
    if (!std::includes(host_.os_features.begin(), host_.os_features.end(), wanted.begin(),
                       wanted.end(),
                       [](absl::string_view a, absl::string_view b) { return a < b; })) {
      return std::nullopt;
    }
  }
  for (size_t i = 0; i < vector_.size(); ++i) {
    const Platform& want = vector_[i];
    if (want.os == os && want.architecture == arch && want.variant == variant) {
      return static_cast<int>(i);
    }
  }
  return std::nullopt;
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
