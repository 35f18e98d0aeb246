#include "registry/digest_check.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "matcher/digest.h"

namespace imgsel::registry {
namespace {

std::string Hex(const EVP_MD* md, absl::string_view bytes) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  // EVP_Digest only fails on allocation failure; an empty hex then never matches.
  if (EVP_Digest(bytes.data(), bytes.size(), out, &len, md, nullptr) != 1) return "";
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(out), len));
}

}  // namespace

std::string Sha256Digest(absl::string_view bytes) {
  return absl::StrCat("sha256:", Hex(EVP_sha256(), bytes));
}

absl::Status VerifyDigest(absl::string_view bytes, absl::string_view digest) {
  if (absl::Status s = ValidateDigest(digest); !s.ok()) return s;
  bool sha512 = digest.substr(0, 7) == "sha512:";
  std::string got = absl::StrCat(sha512 ? "sha512:" : "sha256:",
                                 Hex(sha512 ? EVP_sha512() : EVP_sha256(), bytes));
  if (got != digest) {
    return absl::DataLossError(absl::StrCat("digest mismatch: expected ", digest, ", got ", got,
                                            " (", bytes.size(), " bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace imgsel::registry
