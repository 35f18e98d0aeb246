#include "oci/digest.h"

#include <string>

#include "gtest/gtest.h"

namespace imgsel {
namespace {

TEST(DigestCheckTest, KnownVectors) {
  EXPECT_EQ(Sha256Digest(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Digest("{}"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  EXPECT_TRUE(VerifyDigest("abc",
                           "sha512:ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
                           "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f")
                  .ok());
}

TEST(DigestCheckTest, MismatchAndBadSyntax) {
  absl::Status s = VerifyDigest("tampered", Sha256Digest("original"));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(std::string(s.message()).find("digest mismatch"), std::string::npos);
  EXPECT_NE(std::string(s.message()).find(Sha256Digest("tampered")), std::string::npos);
  EXPECT_EQ(VerifyDigest("x", "sha256:ABC").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(VerifyDigest("x", "md5:00").code(), absl::StatusCode::kInvalidArgument);
}

TEST(VerifyContent, KeepsTheDigestOfTheBytesItHashed) {
  auto ok = VerifyContent("abc", Sha256Digest("abc"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->digest(), Sha256Digest("abc"));
  EXPECT_TRUE(ok->Covers("abc"));
  EXPECT_FALSE(ok->Covers("abcd"));
  EXPECT_EQ(VerifyContent("abd", Sha256Digest("abc")).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(VerifyContent("abc", "sha256:abc").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HashContent("abc").digest(), Sha256Digest("abc"));
  EXPECT_EQ(HashContent("abc").size(), 3u);
}

// Every byte value at every position of a sha256 digest: valid exactly when
// it is 0-9 or a-f (the check works eight bytes at a time).
TEST(ValidateDigest, EveryByteAtEveryPosition) {
  for (size_t pos = 0; pos < 64; ++pos) {
    for (int b = 0; b < 256; ++b) {
      std::string digest = "sha256:" + std::string(64, '0');
      digest[7 + pos] = static_cast<char>(b);
      bool hex = (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f');
      EXPECT_EQ(ValidateDigest(digest).ok(), hex) << "byte " << b << " at " << pos;
    }
  }
  EXPECT_TRUE(ValidateDigest("sha512:" + std::string(128, 'f')).ok());
  EXPECT_FALSE(ValidateDigest("sha512:" + std::string(127, 'f') + "G").ok());
}

TEST(IsValidDigest, AgreesWithValidateDigest) {
  const std::string cases[] = {
      "sha256:" + std::string(64, 'a'),
      "sha256:" + std::string(63, 'a'),
      "sha256:" + std::string(65, 'a'),
      "sha512:" + std::string(128, '0'),
      "sha512:" + std::string(64, '0'),
      "sha384:" + std::string(96, '0'),
      "SHA256:" + std::string(64, 'a'),
      "sha256" + std::string(65, 'a'),
      "",
      "sha256:",
      ":" + std::string(64, 'a'),
  };
  for (const auto& d : cases) EXPECT_EQ(IsValidDigest(d), ValidateDigest(d).ok()) << d;
}

}  // namespace
}  // namespace imgsel
