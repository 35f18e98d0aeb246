#include "matcher/digest.h"

#include <array>

#include "absl/strings/str_cat.h"

namespace imgsel {

absl::Status ValidateDigest(absl::string_view digest) {
  size_t colon = digest.find(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError("digest has no algorithm (want sha256:<hex>)");
  }
  absl::string_view algorithm = digest.substr(0, colon);
  absl::string_view hex = digest.substr(colon + 1);
  size_t want;
  if (algorithm == "sha256") {
    want = 64;
  } else if (algorithm == "sha512") {
    want = 128;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported digest algorithm \"", algorithm.substr(0, 32), "\""));
  }
  if (hex.size() != want) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a ", algorithm, " digest: ", hex.size(), " hex digits, want ", want));
  }
  // Branch-free scan: this runs for every index entry on every pull.
  static constexpr auto kIsHex = [] {
    std::array<bool, 256> t{};
    for (char c = '0'; c <= '9'; ++c) t[static_cast<unsigned char>(c)] = true;
    for (char c = 'a'; c <= 'f'; ++c) t[static_cast<unsigned char>(c)] = true;
    return t;
  }();
  bool all_hex = true;
  for (char c : hex) all_hex &= kIsHex[static_cast<unsigned char>(c)];
  if (!all_hex) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a ", algorithm, " digest: not lowercase hex"));
  }
  return absl::OkStatus();
}

}  // namespace imgsel
