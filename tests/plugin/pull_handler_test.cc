// The PullImage decision table, with containerd and the registry replaced by
// fakes: what goes upstream, what is recorded, what kubelet gets back.
#include "plugin/pull_handler.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "cri/runtime/v1/api.pb.h"
#include "matcher/index.h"
#include "matcher/select.h"

namespace imgsel::plugin {
namespace {

constexpr char kPull[] = "/runtime.v1.ImageService/PullImage";
constexpr char kV3[] = "sha256:7619113e33a90ff18f06dfd58cb1490aabc3bb79ad82ba67b3838dbe7d01fe40";
constexpr char kIndex[] = "sha256:25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string PullRequest(const std::string& image) {
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  req.mutable_auth()->set_username("u");
  req.mutable_auth()->set_password("p");
  req.GetReflection()->MutableUnknownFields(&req)->AddVarint(77, 1);
  return req.SerializeAsString();
}

std::string ImageOf(const std::string& request) {
  runtime::v1::PullImageRequest req;
  req.ParseFromString(request);
  return req.image().image();
}

// containerd: pulls answer "id:<image>", or fail for images in `fail_pulls`;
// ImageStatus answers from `records`.
class FakeCri : public CriUpstream {
 public:
  UpstreamReply Call(const std::string& method, absl::string_view request, const CallInfo&,
                     Cancellation*) override {
    absl::MutexLock lock(&mu);
    calls.push_back({method, std::string(request)});
    UpstreamReply r;
    if (method == kPull) {
      const std::string image = ImageOf(std::string(request));
      if (fail_pulls.count(image)) {
        r.status = grpc::Status(grpc::StatusCode::NOT_FOUND, "no such manifest");
        return r;
      }
      runtime::v1::PullImageResponse resp;
      resp.set_image_ref("id:" + image);
      r.body = resp.SerializeAsString();
      return r;
    }
    runtime::v1::ImageStatusRequest req;
    req.ParseFromString(std::string(request));
    runtime::v1::ImageStatusResponse resp;
    auto it = status_ids.find(req.image().image());
    if (it != status_ids.end()) resp.mutable_image()->set_id(it->second);
    r.body = resp.SerializeAsString();
    return r;
  }

  absl::Mutex mu;
  std::vector<std::pair<std::string, std::string>> calls;
  std::set<std::string> fail_pulls;
  std::map<std::string, std::string> status_ids;
};

class FakeRecords : public ImageRecordWriter {
 public:
  absl::Status Put(const ImageRecord& record, absl::Time) override {
    records.push_back(record);
    return result;
  }
  absl::StatusOr<ImageRecord> Get(const std::string& name, absl::Time) override {
    for (const ImageRecord& r : records) {
      if (r.name == name) return r;
    }
    return absl::NotFoundError(name);
  }
  std::vector<ImageRecord> records;
  absl::Status result = absl::OkStatus();
};

class PullHandlerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto host = ParseHostProfile(ReadFile(std::string(IMGSEL_EXAMPLES) + "/hosts/amd64-v3.json"),
                                 "amd64-v3.json");
    ASSERT_TRUE(host.ok());
    host_ = *host;
    index_bytes_ = ReadFile(std::string(IMGSEL_EXAMPLES) + "/layout/blobs/sha256/" + (kIndex + 7));
  }

  Selection IndexSelection() {
    Selection sel;
    auto parsed = ParseIndex(index_bytes_, "index");
    EXPECT_TRUE(parsed.ok());
    sel.decision = imgsel::Select(*std::move(parsed), host_, Policy());
    sel.is_index = true;
    sel.document_digest = kIndex;
    return sel;
  }

  std::unique_ptr<PullHandler> Handler(PullHandler::SelectFn fn, PullSettings settings = {}) {
    auto h = std::make_unique<PullHandler>(std::move(fn), &cri_, &records_, &metrics_,
                                           [this](const DecisionLine& l) { lines_.push_back(l); });
    settings.status_wait = absl::Milliseconds(200);
    h->SetSettings(settings);
    return h;
  }

  FakeCri cri_;
  FakeRecords records_;
  Metrics metrics_;
  std::vector<DecisionLine> lines_;
  HostProfile host_;
  std::string index_bytes_;
};

TEST_F(PullHandlerTest, SelectedEntryIsPulledByDigestAndRecordedUnderTheTag) {
  const std::string pinned = std::string("host:5000/app@") + kV3;
  cri_.status_ids["host:5000/app:v1"] = "id:" + pinned;
  const registry::Credentials* seen = nullptr;
  std::string seen_user;
  auto h = Handler([&](const SelectionRequest& r) -> absl::StatusOr<Selection> {
    seen = r.credentials;
    if (seen) seen_user = seen->username;
    return IndexSelection();
  });
  const std::string request = PullRequest("host:5000/app:v1");
  UpstreamReply reply = h->Pull(kPull, request, CallInfo(), nullptr);
  ASSERT_TRUE(reply.status.ok());
  runtime::v1::PullImageResponse resp;
  ASSERT_TRUE(resp.ParseFromString(reply.body));
  EXPECT_EQ(resp.image_ref(), "id:" + pinned);
  EXPECT_EQ(seen_user, "u");

  ASSERT_GE(cri_.calls.size(), 2u);
  EXPECT_EQ(cri_.calls[0].first, kPull);
  EXPECT_EQ(cri_.calls[0].second, PullRequest(pinned));  // only the name changed
  EXPECT_EQ(cri_.calls[1].first, "/runtime.v1.ImageService/ImageStatus");

  ASSERT_EQ(records_.records.size(), 1u);
  const ImageRecord& rec = records_.records[0];
  EXPECT_EQ(rec.name, "host:5000/app:v1");
  EXPECT_EQ(rec.digest, kV3);
  EXPECT_EQ(rec.media_type, "application/vnd.oci.image.manifest.v1+json");
  EXPECT_EQ(rec.size, 477);
  EXPECT_EQ(rec.labels.at("io.cri-containerd.image"), "managed");
  EXPECT_EQ(rec.labels.at("io.imgsel.index"), kIndex);

  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].outcome, "selected");
  EXPECT_EQ(lines_[0].chosen, kV3);
  EXPECT_EQ(metrics_.pulls(PullOutcome::kSelected), 1u);
}

TEST_F(PullHandlerTest, IndexDigestIsRecordedUnderThatName) {
  auto h = Handler(
      [&](const SelectionRequest&) -> absl::StatusOr<Selection> { return IndexSelection(); });
  const std::string by_index = std::string("host:5000/app@") + kIndex;
  ASSERT_TRUE(h->Pull(kPull, PullRequest(by_index), CallInfo(), nullptr).status.ok());
  ASSERT_EQ(records_.records.size(), 1u);
  EXPECT_EQ(records_.records[0].name, by_index);
  EXPECT_EQ(records_.records[0].digest, kV3);
}

// Every way selection can fail sends the original bytes to containerd.
TEST_F(PullHandlerTest, FallbacksForwardTheRequestAsSent) {
  struct Case {
    const char* name;
    absl::Status error;
    FallbackReason reason;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"resolve", absl::UnavailableError("resolve host:5000/app:v1: connection refused"),
            FallbackReason::kResolve},
           {"index", absl::InvalidArgumentError("index: manifests: too deep"),
            FallbackReason::kIndex},
           {"budget", absl::DeadlineExceededError("selection budget ran out"),
            FallbackReason::kTimeout},
       }) {
    cri_.calls.clear();
    records_.records.clear();
    auto h = Handler([&](const SelectionRequest&) -> absl::StatusOr<Selection> { return c.error; });
    const std::string request = PullRequest("host:5000/app:v1");
    UpstreamReply reply = h->Pull(kPull, request, CallInfo(), nullptr);
    EXPECT_TRUE(reply.status.ok()) << c.name;
    ASSERT_EQ(cri_.calls.size(), 1u) << c.name;
    EXPECT_EQ(cri_.calls[0].second, request) << c.name;
    EXPECT_TRUE(records_.records.empty()) << c.name;
    EXPECT_EQ(metrics_.fallbacks(c.reason), 1u) << c.name;
    EXPECT_EQ(lines_.back().reason, FallbackReasonName(c.reason)) << c.name;
  }
}

TEST_F(PullHandlerTest, ASelectionEndsByItsBudgetAndThePullGoesOnAsSent) {
  // The selection is handed its budget and, as the pipeline does, returns
  // by it (here: a registry that never answers); the pull then goes to
  // containerd as sent, and no thread is left behind.
  PullSettings settings;
  settings.select_timeout = absl::Milliseconds(50);
  absl::Duration handed = absl::ZeroDuration();
  auto h = Handler(
      [&handed](const SelectionRequest& r) -> absl::StatusOr<Selection> {
        handed = r.budget;
        absl::Notification never;
        never.WaitForNotificationWithTimeout(r.budget);
        return absl::DeadlineExceededError("selection budget of 50ms ran out while resolving");
      },
      settings);
  const std::string request = PullRequest("host:5000/app:v1");
  const absl::Time start = absl::Now();
  UpstreamReply reply = h->Pull(kPull, request, CallInfo(), nullptr);
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(reply.status.ok());
  EXPECT_EQ(handed, absl::Milliseconds(50));
  EXPECT_GE(took, absl::Milliseconds(50));
  EXPECT_LT(took, absl::Seconds(2)) << "the pull waited past the selection's budget";
  EXPECT_EQ(cri_.calls.at(0).second, request);
  EXPECT_EQ(metrics_.fallbacks(FallbackReason::kTimeout), 1u);
  EXPECT_EQ(h->selections_in_flight(), 0) << "the selection's slot is given back when it returns";
}

// A caller with a deadline shorter than select_timeout: selection gets half
// of what is left, so the fallback pull still has time to run.
TEST_F(PullHandlerTest, SelectionTakesAtMostHalfOfTheCallersDeadline) {
  PullSettings settings;
  settings.select_timeout = absl::Seconds(10);
  absl::Duration budget = absl::InfiniteDuration();
  auto h = Handler(
      [&](const SelectionRequest& r) -> absl::StatusOr<Selection> {
        budget = r.budget;
        return IndexSelection();
      },
      settings);
  CallInfo info;
  info.deadline = absl::Now() + absl::Milliseconds(400);
  ASSERT_TRUE(h->Pull(kPull, PullRequest("host:5000/app:v1"), info, nullptr).status.ok());
  EXPECT_GT(budget, absl::ZeroDuration());
  EXPECT_LE(budget, absl::Milliseconds(200));
  // Without a deadline, select_timeout alone.
  ASSERT_TRUE(h->Pull(kPull, PullRequest("host:5000/app:v1"), CallInfo(), nullptr).status.ok());
  EXPECT_EQ(budget, absl::Seconds(10));
}

TEST_F(PullHandlerTest, TooManySelectionsForwardAsSent) {
  PullSettings settings;
  settings.max_selections = 0;
  bool called = false;
  auto h = Handler(
      [&](const SelectionRequest&) -> absl::StatusOr<Selection> {
        called = true;
        return IndexSelection();
      },
      settings);
  EXPECT_TRUE(h->Pull(kPull, PullRequest("app:v1"), CallInfo(), nullptr).status.ok());
  EXPECT_FALSE(called);
  EXPECT_EQ(metrics_.fallbacks(FallbackReason::kBusy), 1u);
}

TEST_F(PullHandlerTest, FailedDigestPullIsRetriedOnceAsSent) {
  cri_.fail_pulls.insert(std::string("host:5000/app@") + kV3);
  auto h = Handler(
      [&](const SelectionRequest&) -> absl::StatusOr<Selection> { return IndexSelection(); });
  const std::string request = PullRequest("host:5000/app:v1");
  UpstreamReply reply = h->Pull(kPull, request, CallInfo(), nullptr);
  ASSERT_TRUE(reply.status.ok());
  ASSERT_EQ(cri_.calls.size(), 2u);
  EXPECT_EQ(cri_.calls[1].second, request);
  EXPECT_TRUE(records_.records.empty());
  EXPECT_EQ(metrics_.fallbacks(FallbackReason::kDigestPull), 1u);
}

TEST_F(PullHandlerTest, ContainerdsOwnErrorIsReturnedWhenItFailsToo) {
  cri_.fail_pulls.insert(std::string("host:5000/app@") + kV3);
  cri_.fail_pulls.insert("host:5000/app:v1");
  auto h = Handler(
      [&](const SelectionRequest&) -> absl::StatusOr<Selection> { return IndexSelection(); });
  UpstreamReply reply = h->Pull(kPull, PullRequest("host:5000/app:v1"), CallInfo(), nullptr);
  EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(PullHandlerTest, RecordFailureFallsBackToThePullAsSent) {
  records_.result = absl::UnavailableError("containerd Images.Create: unavailable");
  auto h = Handler(
      [&](const SelectionRequest&) -> absl::StatusOr<Selection> { return IndexSelection(); });
  const std::string request = PullRequest("host:5000/app:v1");
  UpstreamReply reply = h->Pull(kPull, request, CallInfo(), nullptr);
  ASSERT_TRUE(reply.status.ok());
  ASSERT_EQ(cri_.calls.size(), 2u);
  EXPECT_EQ(cri_.calls[1].second, request);
  runtime::v1::PullImageResponse resp;
  resp.ParseFromString(reply.body);
  EXPECT_EQ(resp.image_ref(), "id:host:5000/app:v1");
  EXPECT_EQ(metrics_.fallbacks(FallbackReason::kRecord), 1u);
}

TEST_F(PullHandlerTest, PlainManifestsAndNoFitAreNotRewritten) {
  auto h = Handler([&](const SelectionRequest&) -> absl::StatusOr<Selection> {
    Selection sel;
    sel.is_index = false;
    return sel;
  });
  const std::string request = PullRequest("app:v1");
  ASSERT_TRUE(h->Pull(kPull, request, CallInfo(), nullptr).status.ok());
  EXPECT_EQ(cri_.calls.at(0).second, request);
  EXPECT_EQ(metrics_.pulls(PullOutcome::kUntouched), 1u);

  cri_.calls.clear();
  HostProfile riscv;
  riscv.platform.os = "linux";
  riscv.platform.architecture = "riscv64";
  auto h2 = Handler([&](const SelectionRequest&) -> absl::StatusOr<Selection> {
    Selection sel;
    auto parsed = ParseIndex(index_bytes_, "index");
    sel.decision = imgsel::Select(*std::move(parsed), riscv, Policy());
    sel.is_index = true;
    return sel;
  });
  ASSERT_TRUE(h2->Pull(kPull, request, CallInfo(), nullptr).status.ok());
  EXPECT_EQ(cri_.calls.at(0).second, request);
  EXPECT_EQ(metrics_.fallbacks(FallbackReason::kNoFit), 1u);
}

TEST_F(PullHandlerTest, UnreadableRequestIsForwardedAsSent) {
  auto h = Handler([&](const SelectionRequest&) -> absl::StatusOr<Selection> {
    ADD_FAILURE() << "no selection for an unreadable request";
    return IndexSelection();
  });
  const std::string garbage = "\x0a\xff";
  h->Pull(kPull, garbage, CallInfo(), nullptr);
  EXPECT_EQ(cri_.calls.at(0).second, garbage);
  EXPECT_EQ(metrics_.fallbacks(FallbackReason::kRequest), 1u);
}

// A control character in the pull's credentials: no selection, no
// registry; containerd gets the request exactly as sent and decides, and
// the decision line names the field without its value.
TEST_F(PullHandlerTest, CredentialsWithControlCharactersAreForwardedAsSent) {
  auto h = Handler([&](const SelectionRequest&) -> absl::StatusOr<Selection> {
    ADD_FAILURE() << "no selection for credentials holding a control character";
    return IndexSelection();
  });
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image("host:5000/app:v1");
  req.mutable_auth()->set_registry_token("token\r\nX-Injected: yes");
  const std::string request = req.SerializeAsString();
  UpstreamReply reply = h->Pull(kPull, request, CallInfo(), nullptr);
  EXPECT_TRUE(reply.status.ok());
  ASSERT_EQ(cri_.calls.size(), 1u);
  EXPECT_EQ(cri_.calls[0].second, request);
  EXPECT_EQ(metrics_.fallbacks(FallbackReason::kRequest), 1u);
  EXPECT_TRUE(absl::StrContains(lines_.back().detail, "auth.registry_token"))
      << lines_.back().detail;
  EXPECT_FALSE(absl::StrContains(lines_.back().detail, "X-Injected")) << lines_.back().detail;
}

TEST(CriImageNameTest, AsContainerdNamesImages) {
  EXPECT_EQ(CriImageName("docker.io/library/nginx", "latest", ""),
            "docker.io/library/nginx:latest");
  EXPECT_EQ(CriImageName("h/app", "v1", "sha256:ab"), "h/app@sha256:ab");
  EXPECT_EQ(CriImageName("h/app", "", ""), "h/app:latest");
}

}  // namespace
}  // namespace imgsel::plugin

namespace imgsel::plugin {
namespace {

// An index with no entry for this host: forwarded as sent by default (what
// containerd alone does), refused with why under nothing_fits = "fail".
TEST_F(PullHandlerTest, NothingFitsForwardsOrFailsAsConfigured) {
  host_.platform = *ParsePlatformSpecifier("linux/s390x");
  for (const bool fail : {false, true}) {
    SCOPED_TRACE(fail ? "fail" : "first-match");
    cri_.calls.clear();
    PullSettings settings;
    settings.fail_when_nothing_fits = fail;
    auto h = Handler(
        [&](const SelectionRequest&) -> absl::StatusOr<Selection> { return IndexSelection(); },
        settings);
    const std::string request = PullRequest("host:5000/app:v1");
    UpstreamReply reply = h->Pull(kPull, request, CallInfo(), nullptr);
    EXPECT_TRUE(records_.records.empty());
    if (!fail) {
      EXPECT_TRUE(reply.status.ok());
      ASSERT_EQ(cri_.calls.size(), 1u);
      EXPECT_EQ(cri_.calls[0].second, request) << "forwarded as sent";
      EXPECT_EQ(lines_.back().outcome, "fallback");
      continue;
    }
    EXPECT_EQ(reply.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_TRUE(cri_.calls.empty()) << "containerd was asked";
    const std::string& message = reply.status.error_message();
    EXPECT_NE(message.find("no entry of host:5000/app:v1 runs on this host (linux/s390x)"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("manifests[0] platform"), std::string::npos) << message;
    EXPECT_LE(message.size(), 1200u);
    EXPECT_EQ(lines_.back().outcome, "refused");
    EXPECT_EQ(lines_.back().reason, "no_fit");
  }
}

}  // namespace
}  // namespace imgsel::plugin

namespace imgsel::plugin {
namespace {

class FixedSandboxes : public SandboxHandlers {
 public:
  absl::StatusOr<std::string> HandlerOf(const PodIdentity&, absl::Time) override {
    ++calls;
    return answer;
  }
  absl::StatusOr<std::string> answer = std::string("runc-b");
  int calls = 0;
};

std::string PodPullRequest(const std::string& image, const std::string& spec_handler) {
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  req.mutable_image()->set_runtime_handler(spec_handler);
  runtime::v1::PodSandboxMetadata* m = req.mutable_sandbox_config()->mutable_metadata();
  m->set_name("web-0");
  m->set_uid("uid-1");
  m->set_namespace_("shop");
  return req.SerializeAsString();
}

// One tag, two handlers: the default's choice keeps "repo:tag", a handler
// with rules of its own records its choice under a name of its own, and a
// handler without rules is the default.
TEST_F(PullHandlerTest, AHandlerWithRulesOfItsOwnNeverMovesTheTag) {
  struct Case {
    const char* name;
    std::string spec_handler;
    absl::StatusOr<std::string> sandbox;
    std::set<std::string> with_rules;
    std::string want_record, want_handler, want_source;
    std::string want_handler_label;  // "": none
    int want_lookups;
  };
  const std::string tag = "host:5000/app:v1";
  const std::string own = "host:5000/app:v1.imgsel.runc-b";
  const Case cases[] = {
      {"sandbox handler with rules",
       "",
       std::string("runc-b"),
       {"runc-b"},
       own,
       "runc-b",
       "sandbox",
       "runc-b",
       1},
      {"image spec handler with rules",
       "runc-b",
       std::string("other"),
       {"runc-b"},
       own,
       "runc-b",
       "image_spec",
       "runc-b",
       0},
      {"sandbox handler without rules",
       "",
       std::string("runc"),
       {"runc-b"},
       tag,
       "runc",
       "sandbox",
       "",
       1},
      {"sandbox under the default runtime",
       "",
       std::string(""),
       {"runc-b"},
       tag,
       "",
       "sandbox",
       "",
       1},
      {"lookup fails: default",
       "",
       absl::UnavailableError("containerd down"),
       {"runc-b"},
       tag,
       "",
       "default",
       "",
       1},
      {"no handler has rules: no lookup", "", std::string("runc-b"), {}, tag, "", "default", "", 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    records_.records.clear();
    FixedSandboxes sandboxes;
    sandboxes.answer = c.sandbox;
    PullSettings settings;
    settings.handlers_with_rules = c.with_rules;
    std::string selected_for = "unset";
    auto h = Handler(
        [&](const SelectionRequest& r) -> absl::StatusOr<Selection> {
          selected_for = r.runtime_handler;
          return IndexSelection();
        },
        settings);
    h->SetSandboxHandlers(&sandboxes);
    UpstreamReply reply = h->Pull(kPull, PodPullRequest(tag, c.spec_handler), CallInfo(), nullptr);
    ASSERT_TRUE(reply.status.ok());
    EXPECT_EQ(selected_for, c.want_handler) << "the rules selected with";
    ASSERT_EQ(records_.records.size(), 1u);
    const ImageRecord& rec = records_.records[0];
    EXPECT_EQ(rec.name, c.want_record);
    if (c.want_handler_label.empty()) {
      EXPECT_EQ(rec.labels.count("io.imgsel.handler"), 0u);
    } else {
      EXPECT_EQ(rec.labels.at("io.imgsel.handler"), c.want_handler_label);
      EXPECT_EQ(rec.labels.at("io.imgsel.record-for"), tag);
      EXPECT_EQ(rec.labels.at("io.imgsel.selected-by"), "imgsel");
    }
    EXPECT_EQ(sandboxes.calls, c.want_lookups);
    EXPECT_EQ(lines_.back().handler, c.want_handler);
    EXPECT_EQ(lines_.back().handler_source, c.want_source);
    EXPECT_EQ(lines_.back().handler_error.empty(), c.sandbox.ok());
    EXPECT_EQ(lines_.back().record, c.want_record);
    EXPECT_EQ(lines_.back().outcome, "selected") << "a failed lookup never fails the pull";
  }
}

TEST(HandlerRecordNameTest, DerivedFromTheTagAndTheHandler) {
  struct Case {
    std::string repository, tag, digest, handler, want;
  };
  const std::string index =
      "sha256:25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7";
  for (const Case& c : {
           Case{"h/app", "v1", "", "runc-b", "h/app:v1.imgsel.runc-b"},
           Case{"h/app", "", "", "kata", "h/app:latest.imgsel.kata"},
           Case{"h/app", "", index, "kata",
                "h/app:sha256-25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7"
                ".imgsel.kata"},
       }) {
    EXPECT_EQ(HandlerRecordName(c.repository, c.tag, c.digest, c.handler), c.want);
  }
  // Too long for a tag, or a handler name a tag cannot hold: hashed, and
  // still one name per (tag, handler).
  const std::string long_tag(120, 'v');
  for (const auto& [tag, handler] : std::vector<std::pair<std::string, std::string>>{
           {long_tag, "runc-b"}, {"v1", "a/b"}, {"v1", "x y"}}) {
    const std::string name = HandlerRecordName("h/app", tag, "", handler);
    ASSERT_TRUE(absl::StartsWith(name, "h/app:imgsel-")) << name;
    EXPECT_EQ(name.size(), std::string("h/app:imgsel-").size() + 32) << name;
    EXPECT_NE(name, HandlerRecordName("h/app", tag, "", handler + "2"));
  }
}

// containerd's content store, as the handler sees it: records what it is
// handed and when, relative to the pulls containerd was asked for.
class FakeHandover : public ContentHandover {
 public:
  struct Lease : HandoverLease {
    explicit Lease(FakeHandover* owner) : owner(owner) {}
    ~Lease() override { owner->pulls_when_released = owner->cri->calls.size(); }
    FakeHandover* owner;
  };
  explicit FakeHandover(FakeCri* cri) : cri(cri) {}

  absl::StatusOr<std::unique_ptr<HandoverLease>> HandOver(const std::string& registry,
                                                          const std::string& repository,
                                                          const std::vector<VerifiedBlob>& blobs,
                                                          absl::Duration hold,
                                                          absl::Time) override {
    ++calls;
    seen_registry = registry;
    seen_repository = repository;
    for (const VerifiedBlob& b : blobs) seen_digests.push_back(b.digest);
    seen_hold = hold;
    pulls_when_handed = cri->calls.size();
    if (!result.ok()) return result;
    return std::make_unique<Lease>(this);
  }

  FakeCri* cri;
  absl::Status result = absl::OkStatus();
  int calls = 0;
  std::string seen_registry, seen_repository;
  std::vector<std::string> seen_digests;
  absl::Duration seen_hold;
  size_t pulls_when_handed = 0, pulls_when_released = 0;
};

constexpr char kConfig[] =
    "sha256:0000000000000000000000000000000000000000000000000000000000000001";

class PullHandlerHandoverTest : public PullHandlerTest {
 protected:
  // The selection a pipeline returns when asked to fetch the chosen content.
  PullHandler::SelectFn SelectWithContent() {
    return [this](const SelectionRequest& r) -> absl::StatusOr<Selection> {
      asked_for_content_ = r.fetch_chosen_content;
      Selection sel = IndexSelection();
      if (r.fetch_chosen_content) {
        sel.chosen_content = {{"application/vnd.oci.image.manifest.v1+json", kV3, "m"},
                              {"application/vnd.oci.image.config.v1+json", kConfig, "c"}};
      }
      return sel;
    };
  }

  void SetUp() override {
    PullHandlerTest::SetUp();
    cri_.status_ids["host:5000/app:v1"] = std::string("id:host:5000/app@") + kV3;
  }

  FakeHandover handover_{&cri_};
  bool asked_for_content_ = false;
};

// The manifest and config the selection fetched reach containerd's store
// before containerd is asked to pull, and are held until that pull is over.
TEST_F(PullHandlerHandoverTest, TheChosenContentIsHandedOverBeforeThePullAndHeldThroughIt) {
  auto h = Handler(SelectWithContent());
  h->SetContentHandover(&handover_);
  CallInfo info;
  info.deadline = absl::Now() + absl::Minutes(2);
  UpstreamReply reply = h->Pull(kPull, PullRequest("host:5000/app:v1"), info, nullptr);
  ASSERT_TRUE(reply.status.ok()) << reply.status.error_message();
  EXPECT_TRUE(asked_for_content_);
  ASSERT_EQ(handover_.calls, 1);
  EXPECT_EQ(handover_.seen_registry, "host:5000");
  EXPECT_EQ(handover_.seen_repository, "app");
  EXPECT_EQ(handover_.seen_digests, (std::vector<std::string>{kV3, kConfig}));
  // Held for what is left of the caller's deadline, plus a margin.
  EXPECT_GT(handover_.seen_hold, absl::Minutes(2));
  EXPECT_LE(handover_.seen_hold, absl::Minutes(3));
  EXPECT_EQ(handover_.pulls_when_handed, 0u) << "handed over after containerd's pull";
  EXPECT_GE(handover_.pulls_when_released, 1u) << "released before containerd's pull";
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].outcome, "selected");
  EXPECT_EQ(lines_[0].handed_over, 2);
  EXPECT_EQ(lines_[0].detail, "");
}

// A handover that fails costs nothing but the bytes containerd fetches
// itself: the pull goes on by digest and the line says why.
TEST_F(PullHandlerHandoverTest, AFailedHandoverLeavesTheFetchToContainerd) {
  handover_.result = absl::DeadlineExceededError("containerd Content.Write sha256:…: late");
  auto h = Handler(SelectWithContent());
  h->SetContentHandover(&handover_);
  UpstreamReply reply = h->Pull(kPull, PullRequest("host:5000/app:v1"), CallInfo(), nullptr);
  ASSERT_TRUE(reply.status.ok());
  ASSERT_GE(cri_.calls.size(), 1u);
  EXPECT_EQ(cri_.calls[0].second, PullRequest(std::string("host:5000/app@") + kV3));
  ASSERT_EQ(records_.records.size(), 1u);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].outcome, "selected");
  EXPECT_EQ(lines_[0].handed_over, 0);
  EXPECT_TRUE(absl::StrContains(lines_[0].detail, "content handover: containerd Content.Write"))
      << lines_[0].detail;
  EXPECT_TRUE(absl::StrContains(lines_[0].detail, "containerd fetches it itself"));
}

// [server] content_handover = false: nothing fetched ahead, nothing written.
TEST_F(PullHandlerHandoverTest, TurnedOffNothingIsFetchedAheadOrHandedOver) {
  PullSettings off;
  off.content_handover = false;
  auto h = Handler(SelectWithContent(), off);
  h->SetContentHandover(&handover_);
  ASSERT_TRUE(h->Pull(kPull, PullRequest("host:5000/app:v1"), CallInfo(), nullptr).status.ok());
  EXPECT_FALSE(asked_for_content_);
  EXPECT_EQ(handover_.calls, 0);
  ASSERT_EQ(lines_.size(), 1u);
  EXPECT_EQ(lines_[0].handed_over, 0);

  // And back on (a reload): the next pull hands over again.
  h->SetSettings(PullSettings{});
  ASSERT_TRUE(h->Pull(kPull, PullRequest("host:5000/app:v1"), CallInfo(), nullptr).status.ok());
  EXPECT_TRUE(asked_for_content_);
  EXPECT_EQ(handover_.calls, 1);
}

}  // namespace
}  // namespace imgsel::plugin
