#include "plugin/pull_request.h"

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cri/runtime/v1/api.pb.h"

namespace imgsel::plugin {
namespace {

// A request as a newer kubelet might send it: fields this build knows, plus
// unknown ones at the top level, inside ImageSpec and inside the sandbox
// config.
std::string NewerKubeletRequest(const std::string& image) {
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  (*req.mutable_image()->mutable_annotations())["a"] = "b";
  req.mutable_image()->set_runtime_handler("nvidia");
  req.mutable_auth()->set_username("user");
  req.mutable_auth()->set_password("secret");
  (*req.mutable_sandbox_config()->mutable_labels())["app"] = "web";
  req.mutable_sandbox_config()
      ->GetReflection()
      ->MutableUnknownFields(req.mutable_sandbox_config())
      ->AddLengthDelimited(4, "dns-config-bytes");  // dns_config: unknown to this subset
  req.mutable_image()->GetReflection()->MutableUnknownFields(req.mutable_image())->AddVarint(42, 7);
  req.GetReflection()->MutableUnknownFields(&req)->AddLengthDelimited(99, "from the future");
  return req.SerializeAsString();
}

TEST(PullRequestTest, ReadsImageHandlerAndCredentials) {
  auto fields = ReadPullImageRequest(NewerKubeletRequest("host:5000/app:v1"));
  ASSERT_TRUE(fields.ok()) << fields.status();
  EXPECT_EQ(fields->image, "host:5000/app:v1");
  EXPECT_EQ(fields->runtime_handler, "nvidia");
  EXPECT_EQ(fields->credentials.username, "user");
  EXPECT_EQ(fields->credentials.password, "secret");
}

TEST(PullRequestTest, BadRequestsAreErrors) {
  EXPECT_FALSE(ReadPullImageRequest("\xff\xff\xff").ok());
  EXPECT_FALSE(ReadPullImageRequest("").ok());  // no image
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image("app");
  req.mutable_auth()->set_auth("not base64!");
  EXPECT_FALSE(ReadPullImageRequest(req.SerializeAsString()).ok());
  // ImageSpec (field 1) says 5 bytes follow; 2 do.
  const std::string truncated = {'\x0a', '\x05', 'a', 'b'};
  EXPECT_FALSE(ReplacePullImageName(truncated, "x").ok());
  EXPECT_FALSE(ReplacePullImageName("", "x").ok());  // no ImageSpec
}

// A CR, LF or any other control character in any AuthConfig field, or in
// what `auth` decodes to, makes the request unreadable for selection (the
// pull then goes to containerd as sent); the error names the field and
// never holds the value.
TEST(PullRequestTest, ControlCharactersInCredentialsAreRefusedByField) {
  struct Case {
    const char* field;  // in the error
    void (*set)(runtime::v1::AuthConfig&, const std::string&);
  };
  const Case cases[] = {
      {"auth.username",
       [](runtime::v1::AuthConfig& a, const std::string& v) { a.set_username(v); }},
      {"auth.password",
       [](runtime::v1::AuthConfig& a, const std::string& v) { a.set_password(v); }},
      {"auth.auth", [](runtime::v1::AuthConfig& a, const std::string& v) { a.set_auth(v); }},
      {"auth.server_address",
       [](runtime::v1::AuthConfig& a, const std::string& v) { a.set_server_address(v); }},
      {"auth.identity_token",
       [](runtime::v1::AuthConfig& a, const std::string& v) { a.set_identity_token(v); }},
      {"auth.registry_token",
       [](runtime::v1::AuthConfig& a, const std::string& v) { a.set_registry_token(v); }},
      {"auth.auth (decoded)",
       [](runtime::v1::AuthConfig& a, const std::string& v) {
         a.set_auth(absl::Base64Escape("user:" + v));
       }},
  };
  for (const Case& c : cases) {
    for (const std::string& secret :
         {std::string("s3cret\r\nX-Injected: yes"), std::string("s3cret\nX-Injected"),
          std::string("s3cret\x7f"), std::string("s3cret\0", 7)}) {
      runtime::v1::PullImageRequest req;
      req.mutable_image()->set_image("host:5000/app:v1");
      c.set(*req.mutable_auth(), secret);
      auto fields = ReadPullImageRequest(req.SerializeAsString());
      ASSERT_FALSE(fields.ok()) << c.field;
      EXPECT_EQ(fields.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
      EXPECT_TRUE(absl::StartsWith(fields.status().message(), absl::StrCat(c.field, ":")))
          << c.field << ": " << fields.status();
      EXPECT_FALSE(absl::StrContains(fields.status().message(), "s3cret")) << c.field;
    }
  }
  // Spaces, punctuation and non-ASCII text are fine.
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image("host:5000/app:v1");
  req.mutable_auth()->set_username("ü ser");
  req.mutable_auth()->set_password("p@ss word~");
  req.mutable_auth()->set_server_address("host:5000");
  EXPECT_TRUE(ReadPullImageRequest(req.SerializeAsString()).ok());
}

TEST(PullRequestTest, RewriteChangesOnlyTheImageName) {
  const std::string original = NewerKubeletRequest("host:5000/app:v1");
  const std::string pinned = "host:5000/app@sha256:" + std::string(64, 'a');
  auto rewritten = ReplacePullImageName(original, pinned);
  ASSERT_TRUE(rewritten.ok()) << rewritten.status();
  // Byte for byte what the same request with the pinned name would be.
  EXPECT_EQ(*rewritten, NewerKubeletRequest(pinned));
  // Rewriting back restores the original bytes exactly.
  auto back = ReplacePullImageName(*rewritten, "host:5000/app:v1");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, original);

  runtime::v1::PullImageRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(*rewritten));
  EXPECT_EQ(parsed.image().image(), pinned);
  EXPECT_EQ(parsed.image().annotations().at("a"), "b");
  EXPECT_EQ(parsed.auth().password(), "secret");
  const auto unknown = [](const google::protobuf::Message& m) -> const auto& {
    return m.GetReflection()->GetUnknownFields(m);
  };
  EXPECT_EQ(unknown(parsed).field_count(), 1);
  EXPECT_EQ(unknown(parsed).field(0).number(), 99);
  EXPECT_EQ(unknown(parsed).field(0).length_delimited(), "from the future");
  EXPECT_EQ(unknown(parsed.image()).field(0).number(), 42);
  EXPECT_EQ(unknown(parsed.sandbox_config()).field(0).length_delimited(), "dns-config-bytes");
}

// What finds the pod's sandbox (plugin/sandbox_handlers.h).
TEST(PullRequestTest, ReadsThePodsSandboxMetadata) {
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image("host:5000/app:v1");
  auto none = ReadPullImageRequest(req.SerializeAsString());
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->pod.uid.empty());
  runtime::v1::PodSandboxMetadata* m = req.mutable_sandbox_config()->mutable_metadata();
  m->set_name("web-0");
  m->set_uid("8d3c");
  m->set_namespace_("shop");
  m->set_attempt(3);
  auto read = ReadPullImageRequest(req.SerializeAsString());
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->pod.name, "web-0");
  EXPECT_EQ(read->pod.uid, "8d3c");
  EXPECT_EQ(read->pod.ns, "shop");
  EXPECT_EQ(read->pod.attempt, 3u);
}

TEST(PullRequestTest, RewriteAddsTheNameWhenTheSpecHasNone) {
  runtime::v1::PullImageRequest req;
  (*req.mutable_image()->mutable_annotations())["k"] = "v";
  auto rewritten = ReplacePullImageName(req.SerializeAsString(), "app@sha256:x");
  ASSERT_TRUE(rewritten.ok());
  runtime::v1::PullImageRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(*rewritten));
  EXPECT_EQ(parsed.image().image(), "app@sha256:x");
  EXPECT_EQ(parsed.image().annotations().at("k"), "v");
}

}  // namespace
}  // namespace imgsel::plugin
