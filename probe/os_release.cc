#include "probe/os_release.h"

#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "probe/setting_lines.h"

namespace imgsel::probe {
namespace {

bool ValidKey(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// The value of a shell assignment's right-hand side; nullopt when malformed.
std::optional<std::string> Unquote(absl::string_view v) {
  std::string out;
  size_t i = 0;
  while (i < v.size()) {
    char c = v[i];
    if (c == '\'') {
      size_t end = v.find('\'', i + 1);
      if (end == absl::string_view::npos) return std::nullopt;
      absl::string_view quoted = v.substr(i + 1, end - i - 1);
      out.append(quoted.data(), quoted.size());
      i = end + 1;
    } else if (c == '"') {
      ++i;
      bool closed = false;
      while (i < v.size()) {
        char d = v[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < v.size() &&
            absl::string_view("\"\\$`").find(v[i + 1]) != absl::string_view::npos) {
          out.push_back(v[i + 1]);
          i += 2;
          continue;
        }
        out.push_back(d);
        ++i;
      }
      if (!closed) return std::nullopt;
    } else if (c == '\\' && i + 1 < v.size()) {
      out.push_back(v[i + 1]);
      i += 2;
    } else if (absl::ascii_isspace(static_cast<unsigned char>(c))) {
      return std::nullopt;  // an unquoted space is not one value
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

std::string LeadingDigits(absl::string_view s) {
  size_t n = 0;
  while (n < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[n]))) ++n;
  return std::string(s.substr(0, n));
}

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> ParseOsRelease(absl::string_view text) {
  auto parsed = ParseSettingLines(
      text, [](absl::string_view line) -> absl::StatusOr<std::pair<std::string, std::string>> {
        size_t eq = line.find('=');
        if (eq == absl::string_view::npos || !ValidKey(line.substr(0, eq))) {
          return absl::InvalidArgumentError("expected KEY=value");
        }
        std::optional<std::string> value = Unquote(line.substr(eq + 1));
        if (!value) return absl::InvalidArgumentError("malformed value (quote it)");
        return std::make_pair(std::string(line.substr(0, eq)), std::move(*value));
      });
  if (!parsed.ok()) return parsed.status();
  std::map<std::string, std::string>& out = *parsed;
  if (auto it = out.find("VERSION_ID"); it != out.end()) {
    std::vector<absl::string_view> parts = absl::StrSplit(it->second, '.');
    std::string major = LeadingDigits(parts[0]);
    if (!major.empty()) {
      out["VERSION_ID.major"] = major;
      if (parts.size() > 1) {
        std::string minor = LeadingDigits(parts[1]);
        if (!minor.empty()) out["VERSION_ID.minor"] = minor;
      }
    }
  }
  return std::move(*parsed);
}

}  // namespace imgsel::probe
