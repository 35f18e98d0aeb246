#include "registry/reference.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "oci/digest.h"

namespace imgsel::registry {
namespace {

constexpr absl::string_view kDockerHub = "docker.io";
constexpr size_t kMaxReferenceLength = 4096;
// Docker's NameTotalLengthMax, on the normalised "registry/repository".
constexpr size_t kMaxNameLength = 255;

absl::Status Bad(absl::string_view ref, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid image reference \"", ref.substr(0, 256), "\": ", why));
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One repository path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool ValidComponent(absl::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  for (size_t i = 0; i < c.size();) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !IsLowerAlnum(c[j])) ++j;
    absl::string_view sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == absl::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    i = j;
  }
  return true;
}

bool ValidTag(absl::string_view t) {
  if (t.empty() || t.size() > 128) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    char c = t[i];
    bool word = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (!(word || (i > 0 && (c == '.' || c == '-')))) return false;
  }
  return true;
}

// host, host:port, [v6]:port — letters, digits, '-', '.', one optional port.
bool ValidHost(absl::string_view h) {
  if (h.empty()) return false;
  absl::string_view name = h;
  size_t colon = h.rfind(':');
  if (colon != absl::string_view::npos && h.front() != '[') {
    absl::string_view port = h.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char c : port)
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    int number = 0;
    if (!absl::SimpleAtoi(port, &number) || number < 1 || number > 65535) return false;
    name = h.substr(0, colon);
  }
  if (name.empty()) return false;
  if (name.front() == '[') return name.back() == ']' || h.find("]:") != absl::string_view::npos;
  for (char c : name) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  }
  return true;
}

}  // namespace

std::string Reference::ApiHost() const {
  if (registry == kDockerHub) return "registry-1.docker.io";
  return registry;
}

std::string Reference::Name() const { return absl::StrCat(registry, "/", repository); }

std::string Reference::String() const {
  std::string out = Name();
  if (!tag.empty()) absl::StrAppend(&out, ":", tag);
  if (!digest.empty()) absl::StrAppend(&out, "@", digest);
  return out;
}

std::string Reference::ManifestReference() const { return digest.empty() ? tag : digest; }

absl::StatusOr<Reference> ParseReference(absl::string_view ref) {
  if (ref.empty()) return Bad(ref, "empty");
  if (ref.size() > kMaxReferenceLength) return Bad(ref, "longer than 4096 characters");
  if (absl::StrContains(ref, "://"))
    return Bad(ref, "a reference has no scheme (drop \"https://\")");
  Reference out;
  absl::string_view rest = ref;
  // "user:pass@host/app": URL userinfo, not a digest. Said as such, and the
  // secret is not repeated in the message (messages reach logs).
  if (size_t at = rest.find('@'), slash = rest.find('/');
      at != absl::string_view::npos && slash != absl::string_view::npos && at < slash &&
      !absl::StartsWith(rest.substr(at + 1), "sha256:") &&
      !absl::StartsWith(rest.substr(at + 1), "sha512:")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid image reference \"<credentials>@", rest.substr(at + 1).substr(0, 256),
        "\": credentials do not belong in a reference; give them through the Docker config "
        "(--docker-config, ~/.docker/config.json) or the pull's own auth"));
  }
  if (size_t at = rest.find('@'); at != absl::string_view::npos) {
    absl::string_view digest = rest.substr(at + 1);
    if (absl::Status s = ValidateDigest(digest); !s.ok()) return Bad(ref, s.message());
    out.digest = std::string(digest);
    rest = rest.substr(0, at);
  }
  // A tag is after the last ':' that follows the last '/', so "host:5000/app" has none.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos && (slash == absl::string_view::npos || colon > slash)) {
    absl::string_view tag = rest.substr(colon + 1);
    if (!ValidTag(tag)) {
      return Bad(ref, absl::StrCat("tag \"", tag.substr(0, 130),
                                   "\" must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"));
    }
    out.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return Bad(ref, "no repository name");
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '/');
  absl::string_view first = parts.front();
  bool has_host = parts.size() > 1 && (absl::StrContains(first, '.') ||
                                       absl::StrContains(first, ':') || first == "localhost");
  if (has_host) {
    if (!ValidHost(first))
      return Bad(ref, absl::StrCat("registry host \"", first, "\" is not valid"));
    out.registry = absl::AsciiStrToLower(first);
    if (out.registry == "index.docker.io" || out.registry == "registry-1.docker.io") {
      out.registry = std::string(kDockerHub);
    }
    parts.erase(parts.begin());
  } else {
    out.registry = std::string(kDockerHub);
  }
  for (absl::string_view p : parts) {
    if (ValidComponent(p)) continue;
    if (p != absl::AsciiStrToLower(p)) {
      return Bad(ref, "repository name must be lowercase");
    }
    return Bad(ref, absl::StrCat("repository component \"", p.substr(0, 256),
                                 "\" must be [a-z0-9] separated by '.', '_', '__' or '-'"));
  }
  out.repository = absl::StrJoin(parts, "/");
  if (out.registry == kDockerHub && parts.size() == 1) {
    out.repository = absl::StrCat("library/", out.repository);
  }
  // Counted on the normalised name, as Docker counts it: a limit on the
  // name as written would let "docker.io/library/" push a short name past
  // it, and the reference's own normal form would then be refused.
  if (out.Name().size() > kMaxNameLength) {
    return Bad(ref, absl::StrCat("name \"", out.Name().substr(0, 64), "...\" is longer than ",
                                 kMaxNameLength, " characters (registry/repository, normalised)"));
  }
  if (out.tag.empty() && out.digest.empty()) out.tag = "latest";
  return out;
}

}  // namespace imgsel::registry
