// The registry misbehaving under a real pull: kubelet (this test) pulls
// through imgseld, which reads the registry through a fault-injecting proxy
// (fault_proxy.h), while containerd reads the real registry directly. Each
// fault must end in a working image - imgsel's choice when the selection
// survives it, containerd's own first match when imgsel falls back - or in
// containerd's own error, never in a pull held past the selection budget,
// and never in a choice made from bytes whose digest did not match.
//
// One imgseld (select_timeout 1500ms) serves every fault of the table
// (Cases): the proxy's rules name each fault's repository, so the faults do
// not meet. A name that does not resolve needs a hosts.toml, or an image
// name, of its own: two tests below. Each case prints the pull's wall time
// and the time from the first faulted request to the answer
// (docs/RELIABILITY.md, "Faults: the registry").
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/integration/fault_proxy.h"
#include "tests/integration/harness.h"
#include "tests/integration/world.h"

namespace imgsel::integration {
namespace {

constexpr absl::Duration kSelectTimeout = absl::Milliseconds(1500);
// What containerd's own pull of the small example image may add to the
// budget. The budget plus this stays below imgseld's request_timeout (5 s,
// world.cc): a selection held by a request's own timeout fails the bound.
constexpr absl::Duration kContainerdMargin = absl::Milliseconds(3000);

struct FaultCase {
  const char* name;  // the test's name; lowercased after "f-", its repository
  // The requests the fault applies to (the path after /v2/<repo>/) and how.
  std::vector<FaultRule> rules;
  const char* pulled;   // kV3: imgsel's choice survived; kGeneric: containerd's first match
  const char* outcome;  // the decision line's
  const char* reason;   // the fallback reason; "" when selected
  const char* detail;   // a part of the decision line's detail; "" for none
  const char* not_in_line = "";  // what the decision line must not hold; "" for nothing
};

std::string Repo(const FaultCase& c) { return absl::StrCat("f-", absl::AsciiStrToLower(c.name)); }

// gtest names a failing case by this, not by its bytes.
void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.name; }

FaultRule On(const std::string& path_after_repo, Fault fault) {
  FaultRule rule;
  rule.path_contains = path_after_repo;  // completed with the repository by Rules()
  rule.fault = fault;
  return rule;
}

// The index with other bytes of the same length, changed so a selection
// that used them would choose something else: the v3 entry becomes a v9
// one no host here runs, leaving the avx2 entry the best.
FaultRule CorruptIndex() {
  FaultRule rule = On("manifests/v1", Fault::kWrongDigest);
  rule.replace_from = "\"variant\": \"v3\"";
  rule.replace_to = "\"variant\": \"v9\"";
  return rule;
}

FaultRule TooManyRequests(int retry_after_seconds) {
  FaultRule rule = On("manifests/v1", Fault::kTooManyRequests);
  rule.retry_after_seconds = retry_after_seconds;
  return rule;
}

FaultRule Oversize() {
  FaultRule rule = On("manifests/v1", Fault::kOversize);
  rule.oversize_bytes = (4 << 20) + 1;  // one byte over [registry]'s manifest cap
  return rule;
}

FaultRule RedirectTo(const std::string& host) {
  FaultRule rule = On("manifests/v1", Fault::kRedirect);
  rule.redirect_to = host;
  return rule;
}

// Stands for the second loopback host a redirect may name, which passes
// every request to the registry; its port is known once it listens.
constexpr char kOtherHost[] = "other-loopback-host";

std::vector<FaultCase> Cases() {
  return {
      {"StallAfterHeaders",
       {On("manifests/v1", Fault::kStallAfterHeaders)},
       kGeneric,
       "fallback",
       "timeout",
       "budget"},
      {"ConnectionReset",
       {On("manifests/v1", Fault::kReset)},
       kGeneric,
       "fallback",
       "resolve",
       "connection closed"},
      {"ServerError",
       {On("manifests/v1", Fault::kServerError)},
       kGeneric,
       "fallback",
       "resolve",
       "HTTP 500"},
      {"TooManyRequests", {TooManyRequests(30)}, kGeneric, "fallback", "resolve", "HTTP 429"},
      {"UnauthorizedSilentRealm",
       {On("manifests/v1", Fault::kSilentRealm)},
       kGeneric,
       "fallback",
       "timeout",
       "budget"},
      {"WrongDigestIndex", {CorruptIndex()}, kGeneric, "fallback", "resolve", "digest mismatch"},
      // The chosen manifest, which imgsel reads for its base image
      // annotations and to hand it to containerd: corrupted or held, no
      // selection is made from it (the entry's artifacts cannot be known,
      // and [compat] on_error = "fallback" sends the pull to containerd as
      // sent). Its config, corrupted, is not handed over, and containerd
      // fetches it itself.
      {"WrongDigestChosenManifest",
       {On(absl::StrCat("manifests/", kV3), Fault::kWrongDigest)},
       kGeneric,
       "fallback",
       "artifacts",
       "digest mismatch"},
      {"WrongDigestChosenConfig",
       {On(absl::StrCat("blobs/", ConfigDigest(kV3)), Fault::kWrongDigest)},
       kV3,
       "selected",
       "",
       "\"handed_over\":1",  // the manifest alone
       "\"handed_over\":2"},
      {"StallOnTheChosenManifest",
       {On(absl::StrCat("manifests/", kV3), Fault::kStallAfterHeaders)},
       kGeneric,
       "fallback",
       "timeout",
       "budget"},
      {"OversizeIndex", {Oversize()}, kGeneric, "fallback", "resolve", "manifest limit"},
      {"RedirectToAnotherHost", {RedirectTo(kOtherHost)}, kV3, "selected", "", "\"handed_over\":2"},
      {"RedirectToAHostThatDoesNotResolve",
       {RedirectTo("registry.invalid:5000")},
       kGeneric,
       "fallback",
       "resolve",
       "registry.invalid"},
      {"EndlessReferrers",
       {On("referrers/", Fault::kEndlessListing)},
       kGeneric,
       "fallback",
       "artifacts",
       "listing bytes"},
      {"EndlessTagSchema",
       {On("manifests/sha256-", Fault::kEndlessListing)},
       kGeneric,
       "fallback",
       "artifacts",
       "manifest limit"},
  };
}

// The rules of every case, each completed with its repository and the
// other host's address.
std::vector<FaultRule> Rules(const std::string& other_host) {
  std::vector<FaultRule> all;
  for (const FaultCase& c : Cases()) {
    for (FaultRule rule : c.rules) {
      rule.path_contains = absl::StrCat("/v2/", Repo(c), "/", rule.path_contains);
      if (rule.redirect_to == kOtherHost) rule.redirect_to = other_host;
      all.push_back(std::move(rule));
    }
  }
  return all;
}

class RegistryFaultTest : public ::testing::TestWithParam<FaultCase> {
 protected:
  static void SetUpTestSuite() {
    if (!world->skip.empty()) return;
    const std::string& host = world->registry->host();
    const int registry_port = std::stoi(host.substr(host.rfind(':') + 1));
    std::string why;
    other_ = FaultProxy::Start(registry_port, {}, &why).release();
    if (other_ == nullptr) {
      setup_error_ = new std::string(why);
      return;
    }
    proxy_ =
        FaultProxy::Start(registry_port, Rules(absl::StrCat("127.0.0.1:", other_->port())), &why)
            .release();
    if (proxy_ == nullptr) {
      setup_error_ = new std::string(why);
      return;
    }
    const std::string certs = world->dir + "/certs-faults.d";
    if (!WriteHostsToml(certs, host, absl::StrCat("127.0.0.1:", proxy_->port())).ok()) {
      setup_error_ = new std::string("cannot write " + certs);
      return;
    }
    auto d = StartImgseld(
        "faults",
        absl::StrCat("select_timeout = \"", absl::ToInt64Milliseconds(kSelectTimeout), "ms\"\n"),
        {}, certs);
    if (!d.ok()) {
      setup_error_ = new std::string(d.status().message());
      return;
    }
    daemon_ = new Daemon(*std::move(d));
  }

  static void TearDownTestSuite() {
    delete daemon_;  // first: it holds connections to the proxies
    delete proxy_;
    delete other_;
    delete setup_error_;
    daemon_ = nullptr;
    proxy_ = nullptr;
    other_ = nullptr;
    setup_error_ = nullptr;
  }

  static Daemon* daemon_;
  static FaultProxy* proxy_;
  static FaultProxy* other_;
  static std::string* setup_error_;
};

Daemon* RegistryFaultTest::daemon_ = nullptr;
FaultProxy* RegistryFaultTest::proxy_ = nullptr;
FaultProxy* RegistryFaultTest::other_ = nullptr;
std::string* RegistryFaultTest::setup_error_ = nullptr;

TEST_P(RegistryFaultTest, PullEndsInAWorkingImageWithinTheBudget) {
  REQUIRE_WORLD();
  ASSERT_EQ(setup_error_, nullptr) << *setup_error_;
  const FaultCase& c = GetParam();
  const std::string image = Ref(Repo(c));
  auto cri = Cri(daemon_->cri_socket);

  const absl::Time start = absl::Now();
  auto ref = Pull(*cri, image);
  const absl::Time answered = absl::Now();
  const std::string log = ReadFile(daemon_->log);
  ASSERT_TRUE(ref.ok()) << ref.status() << log;

  // The fault happened, to this pull: else the case proves nothing.
  absl::Time first_fault = absl::InfiniteFuture();
  std::string seen;
  for (const FaultProxy::Request& r : proxy_->requests()) {
    if (!absl::StrContains(r.line, absl::StrCat("/v2/", Repo(c), "/"))) continue;
    absl::StrAppend(&seen, "\n  ", r.line, " -> ", FaultName(r.fault));
    if (r.fault != Fault::kPass) first_fault = std::min(first_fault, r.arrived);
  }
  ASSERT_NE(first_fault, absl::InfiniteFuture()) << "no request met the fault:" << seen;

  EXPECT_EQ(*ref, ConfigDigest(c.pulled)) << seen;
  auto status = Status(*cri, image);
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(status->id(), ConfigDigest(c.pulled));

  const std::string line = PullLine(log, image);
  ASSERT_FALSE(line.empty()) << log;
  EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"outcome\":\"", c.outcome, "\""))) << line;
  if (*c.reason != '\0') {
    EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"reason\":\"", c.reason, "\""))) << line;
  }
  if (*c.detail != '\0') {
    EXPECT_TRUE(absl::StrContains(line, c.detail)) << line;
  }
  if (*c.not_in_line != '\0') {
    EXPECT_FALSE(absl::StrContains(line, c.not_in_line)) << line;
  }
  if (std::string(c.outcome) == "fallback") {
    // Nothing was chosen: containerd pulled as kubelet asked.
    EXPECT_FALSE(absl::StrContains(line, "\"chosen\"")) << line;
  } else {
    EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"chosen\":\"", c.pulled, "\""))) << line;
  }

  const absl::Duration took = answered - start;
  EXPECT_LT(took, kSelectTimeout + kContainerdMargin) << line;
  std::cout << "fault " << c.name << ": pulled "
            << (std::string(c.pulled) == kV3 ? "imgsel's choice (v3)"
                                             : "containerd's first match (generic)")
            << ", PullImage " << absl::ToInt64Milliseconds(took) << " ms, fault to answer "
            << absl::ToInt64Milliseconds(answered - first_fault) << " ms\n  " << line << std::endl;
}

INSTANTIATE_TEST_SUITE_P(Faults, RegistryFaultTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<FaultCase>& info) {
                           return std::string(info.param.name);
                         });

// A name that does not resolve, as imgseld's only server for the registry
// (hosts.toml): imgsel falls back at once and containerd, which resolves
// the registry itself, pulls its first match.
TEST(RegistryFaults, ServerNameThatDoesNotResolve) {
  REQUIRE_WORLD();
  const std::string certs = world->dir + "/certs-invalid.d";
  ASSERT_TRUE(WriteHostsToml(certs, world->registry->host(), "registry.invalid:5000").ok());
  auto d = StartImgseld(
      "faults-dns",
      absl::StrCat("select_timeout = \"", absl::ToInt64Milliseconds(kSelectTimeout), "ms\"\n"), {},
      certs);
  ASSERT_TRUE(d.ok()) << d.status();
  auto cri = Cri(d->cri_socket);
  const std::string image = Ref("f-dns");
  const absl::Time start = absl::Now();
  auto ref = Pull(*cri, image);
  const absl::Duration took = absl::Now() - start;
  ASSERT_TRUE(ref.ok()) << ref.status() << ReadFile(d->log);
  EXPECT_EQ(*ref, ConfigDigest(kGeneric));
  const std::string line = PullLine(ReadFile(d->log), image);
  EXPECT_TRUE(absl::StrContains(line, "\"outcome\":\"fallback\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, "\"reason\":\"resolve\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, "registry.invalid")) << line;
  EXPECT_LT(took, kSelectTimeout + kContainerdMargin) << line;
  std::cout << "fault DnsDoesNotResolve: pulled containerd's first match (generic), PullImage "
            << absl::ToInt64Milliseconds(took) << " ms" << std::endl;
}

// A fault containerd meets too: the image's own registry name does not
// resolve. No image exists to pull, so kubelet must see containerd's own
// error, the same code and message it gets from containerd directly.
TEST(RegistryFaults, RegistryThatDoesNotResolveForContainerdEitherGivesContainerdsError) {
  REQUIRE_WORLD();
  auto pull = [](const std::string& socket, absl::Duration* took) {
    auto cri = Cri(socket);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    runtime::v1::PullImageRequest req;
    req.mutable_image()->set_image("registry.invalid/app:v1");
    runtime::v1::PullImageResponse resp;
    const absl::Time start = absl::Now();
    grpc::Status s = cri->PullImage(&ctx, req, &resp);
    *took = absl::Now() - start;
    return s;
  };
  absl::Duration direct_took;
  absl::Duration through_took;
  const grpc::Status direct = pull(world->containerd->socket(), &direct_took);
  const grpc::Status through = pull(world->main.cri_socket, &through_took);
  ASSERT_FALSE(direct.ok());
  EXPECT_EQ(through.error_code(), direct.error_code());
  EXPECT_EQ(through.error_message(), direct.error_message());
  const std::string line = PullLine(ReadFile(world->main.log), "registry.invalid/app:v1");
  EXPECT_TRUE(absl::StrContains(line, "\"outcome\":\"fallback\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, "\"reason\":\"resolve\"")) << line;
  EXPECT_LT(through_took, direct_took + kSelectTimeout + kContainerdMargin) << line;
  std::cout << "fault DnsDoesNotResolveForContainerdEither: containerd's error, PullImage "
            << absl::ToInt64Milliseconds(through_took) << " ms (containerd alone "
            << absl::ToInt64Milliseconds(direct_took) << " ms)" << std::endl;
}

}  // namespace
}  // namespace imgsel::integration

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::vector<std::string> repos = {"f-dns"};
  for (const imgsel::integration::FaultCase& c : imgsel::integration::Cases()) {
    repos.push_back(imgsel::integration::Repo(c));
  }
  ::testing::AddGlobalTestEnvironment(new imgsel::integration::WorldEnvironment({repos, {}}));
  return RUN_ALL_TESTS();
}
