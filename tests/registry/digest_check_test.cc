#include "registry/digest_check.h"

#include <string>

#include "gtest/gtest.h"

namespace imgsel::registry {
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

}  // namespace
}  // namespace imgsel::registry
