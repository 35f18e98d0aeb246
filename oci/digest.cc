#include "oci/digest.h"

#include <openssl/evp.h>

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace imgsel {
namespace {

// True when every byte is 0-9 or a-f. Sixteen (SSE2) or eight (SWAR) bytes at
// a time: this runs
// for every entry of every index on every pull. For ASCII bytes, b is in
// [lo, hi] exactly when b + (0x80 - lo) has its top bit set and
// b + (0x7f - hi) does not; no byte carries into the next.
bool IsLowerHex(absl::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  auto in_range = [](uint64_t x, uint8_t lo, uint8_t hi) {
    return (x + kOnes * (0x80 - lo)) & ~(x + kOnes * (0x7f - hi)) & kHigh;
  };
  size_t i = 0;
#if defined(__SSE2__)
  // Sixteen bytes at a time where SSE2 is the baseline (every x86-64).
  const __m128i zero_m1 = _mm_set1_epi8('0' - 1), nine_p1 = _mm_set1_epi8('9' + 1);
  const __m128i a_m1 = _mm_set1_epi8('a' - 1), f_p1 = _mm_set1_epi8('f' + 1);
  for (; i + 16 <= s.size(); i += 16) {
    __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
    // Signed compares are right here: bytes >= 0x80 are negative, so never in range.
    __m128i digit = _mm_and_si128(_mm_cmpgt_epi8(x, zero_m1), _mm_cmplt_epi8(x, nine_p1));
    __m128i af = _mm_and_si128(_mm_cmpgt_epi8(x, a_m1), _mm_cmplt_epi8(x, f_p1));
    if (_mm_movemask_epi8(_mm_or_si128(digit, af)) != 0xFFFF) return false;
  }
#endif
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t x;
    std::memcpy(&x, s.data() + i, 8);
    if (x & kHigh) return false;
    if ((in_range(x, '0', '9') | in_range(x, 'a', 'f')) != kHigh) return false;
  }
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Hex(const EVP_MD* md, absl::string_view bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure; an empty hex then never matches.
  if (EVP_Digest(bytes.data(), bytes.size(), out, &len, md, nullptr) != 1) return "";
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(out), len));
}

}  // namespace

bool IsValidDigest(absl::string_view digest) {
  if (digest.size() == 7 + 64 && digest.substr(0, 7) == "sha256:") {
    return IsLowerHex(digest.substr(7));
  }
  if (digest.size() == 7 + 128 && digest.substr(0, 7) == "sha512:") {
    return IsLowerHex(digest.substr(7));
  }
  return false;
}

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
  if (!IsLowerHex(hex)) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a ", algorithm, " digest: not lowercase hex"));
  }
  return absl::OkStatus();
}

std::string Sha256Digest(absl::string_view bytes) {
  return absl::StrCat("sha256:", Hex(EVP_sha256(), bytes));
}

absl::Status VerifyDigest(absl::string_view bytes, absl::string_view digest) {
  return VerifyContent(bytes, digest).status();
}

absl::StatusOr<VerifiedDigest> VerifyContent(absl::string_view bytes, absl::string_view digest) {
  if (absl::Status s = ValidateDigest(digest); !s.ok()) return s;
  bool sha512 = digest.substr(0, 7) == "sha512:";
  std::string got = absl::StrCat(sha512 ? "sha512:" : "sha256:",
                                 Hex(sha512 ? EVP_sha512() : EVP_sha256(), bytes));
  if (got != digest) {
    return absl::DataLossError(absl::StrCat("digest mismatch: expected ", digest, ", got ", got,
                                            " (", bytes.size(), " bytes)"));
  }
  return VerifiedDigest(std::move(got), bytes.size());
}

VerifiedDigest HashContent(absl::string_view bytes) {
  return VerifiedDigest(Sha256Digest(bytes), bytes.size());
}

}  // namespace imgsel
