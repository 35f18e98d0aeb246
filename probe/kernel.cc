#include "probe/kernel.h"

#include <zlib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "probe/setting_lines.h"

namespace imgsel::probe {

std::map<std::string, std::string> KernelVersionAttributes(absl::string_view release) {
  std::map<std::string, std::string> out;
  release = absl::StripAsciiWhitespace(release);
  if (release.empty()) return out;
  out["full"] = std::string(release);
  static constexpr const char* kParts[] = {"major", "minor", "revision"};
  absl::string_view rest = release;
  for (const char* part : kParts) {
    size_t n = 0;
    while (n < rest.size() && absl::ascii_isdigit(static_cast<unsigned char>(rest[n]))) ++n;
    if (n == 0) break;
    out[part] = std::string(rest.substr(0, n));
    if (n == rest.size() || rest[n] != '.') break;
    rest = rest.substr(n + 1);
  }
  return out;
}

std::set<std::string> ParseProcModules(absl::string_view text) {
  std::set<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    if (!f.empty()) out.emplace(f[0]);
  }
  return out;
}

std::set<std::string> ParseModulesBuiltin(absl::string_view text) {
  std::set<std::string> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    line = absl::StripAsciiWhitespace(line);
    if (size_t slash = line.rfind('/'); slash != absl::string_view::npos)
      line.remove_prefix(slash + 1);
    if (absl::EndsWith(line, ".ko")) line.remove_suffix(3);
    if (!line.empty()) out.emplace(line);
  }
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> ParseKernelConfig(absl::string_view text) {
  return ParseSettingLines(
      text, [](absl::string_view line) -> absl::StatusOr<std::pair<std::string, std::string>> {
        size_t eq = line.find('=');
        if (!absl::StartsWith(line, "CONFIG_") || eq == absl::string_view::npos || eq == 7) {
          return absl::InvalidArgumentError("expected CONFIG_NAME=value");
        }
        absl::string_view value = line.substr(eq + 1);
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
          value = value.substr(1, value.size() - 2);
        }
        return std::make_pair(std::string(line.substr(7, eq - 7)), std::string(value));
      });
}

absl::StatusOr<std::string> Gunzip(absl::string_view gz, size_t max_bytes) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return absl::InternalError("zlib init failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  zs.avail_in = static_cast<uInt>(gz.size());
  std::string out;
  char buf[65536];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof buf;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return absl::InvalidArgumentError(rc == Z_BUF_ERROR ? "truncated gzip data"
                                                          : "not gzip data");
    }
    size_t n = sizeof buf - zs.avail_out;
    if (out.size() + n > max_bytes) {
      inflateEnd(&zs);
      return absl::OutOfRangeError(absl::StrCat("larger than ", max_bytes, " bytes unpacked"));
    }
    out.append(buf, n);
  }
  inflateEnd(&zs);
  return out;
}

}  // namespace imgsel::probe
