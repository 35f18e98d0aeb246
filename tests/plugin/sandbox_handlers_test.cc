// Which runtime handler a pull is for: the order of the sources, and the
// sandbox lookup against a RuntimeService that answers like containerd's.
#include "plugin/sandbox_handlers.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "cri/runtime/v1/api.grpc.pb.h"
#include "plugin/upstream.h"

namespace imgsel::plugin {
namespace {

class FakeLookup : public SandboxHandlers {
 public:
  absl::StatusOr<std::string> HandlerOf(const PodIdentity& pod, absl::Time) override {
    ++calls;
    asked = pod;
    return answer;
  }
  absl::StatusOr<std::string> answer = std::string("runc-b");
  int calls = 0;
  PodIdentity asked;
};

TEST(ResolvePullRuntimeHandlerTest, ImageSpecThenSandboxThenDefault) {
  const PodIdentity pod{"web-0", "uid-1", "shop", 2};
  struct Case {
    const char* name;
    std::string image_spec;
    PodIdentity pod;
    absl::StatusOr<std::string> lookup;
    std::string want_name, want_source;
    bool want_error, want_lookup;
  };
  const Case cases[] = {
      {"image spec wins, no lookup", "kata", pod, std::string("runc-b"), "kata", "image_spec",
       false, false},
      {"sandbox", "", pod, std::string("runc-b"), "runc-b", "sandbox", false, true},
      {"sandbox under the default runtime", "", pod, std::string(""), "", "sandbox", false, true},
      {"no such sandbox", "", pod, absl::NotFoundError("no READY sandbox"), "", "default", true,
       true},
      {"containerd fails", "", pod, absl::DeadlineExceededError("deadline"), "", "default", true,
       true},
      {"no sandbox config (crictl pull)", "", PodIdentity{}, std::string("runc-b"), "", "default",
       false, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeLookup lookup;
    lookup.answer = c.lookup;
    PullRuntimeHandler got =
        ResolvePullRuntimeHandler(c.image_spec, c.pod, &lookup, absl::Now() + absl::Seconds(1));
    EXPECT_EQ(got.name, c.want_name);
    EXPECT_EQ(got.source, c.want_source);
    EXPECT_EQ(!got.error.empty(), c.want_error) << got.error;
    EXPECT_EQ(lookup.calls, c.want_lookup ? 1 : 0);
    if (c.want_lookup) {
      EXPECT_EQ(lookup.asked.uid, "uid-1");
    }
  }
  PullRuntimeHandler none = ResolvePullRuntimeHandler("", pod, nullptr, absl::Now());
  EXPECT_EQ(none.source, "default");
}

// containerd's CRI as far as ListPodSandbox goes: applies the label and
// state filter as containerd does, and records what it was asked.
class FakeRuntime final : public runtime::v1::RuntimeService::Service {
 public:
  grpc::Status ListPodSandbox(grpc::ServerContext*, const runtime::v1::ListPodSandboxRequest* req,
                              runtime::v1::ListPodSandboxResponse* resp) override {
    absl::MutexLock lock(&mu);
    asked = *req;
    if (fail) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "runtime not ready");
    for (const runtime::v1::PodSandbox& sb : sandboxes) {
      bool match = !req->filter().has_state() || sb.state() == req->filter().state().state();
      for (const auto& [k, v] : req->filter().label_selector()) {
        auto it = sb.labels().find(k);
        match = match && it != sb.labels().end() && it->second == v;
      }
      if (match) *resp->add_items() = sb;
    }
    return grpc::Status::OK;
  }
  // Runs on a gRPC server thread: what it was asked is read by the test
  // after the call, what it answers is set by the test before it.
  absl::Mutex mu;
  std::vector<runtime::v1::PodSandbox> sandboxes ABSL_GUARDED_BY(mu);
  runtime::v1::ListPodSandboxRequest asked ABSL_GUARDED_BY(mu);
  bool fail ABSL_GUARDED_BY(mu) = false;
};

runtime::v1::PodSandbox Sandbox(const std::string& id, const std::string& name,
                                const std::string& uid, uint32_t attempt, bool ready,
                                const std::string& handler, int64_t created) {
  runtime::v1::PodSandbox sb;
  sb.set_id(id);
  sb.mutable_metadata()->set_name(name);
  sb.mutable_metadata()->set_uid(uid);
  sb.mutable_metadata()->set_namespace_("shop");
  sb.mutable_metadata()->set_attempt(attempt);
  sb.set_state(ready ? runtime::v1::SANDBOX_READY : runtime::v1::SANDBOX_NOTREADY);
  (*sb.mutable_labels())[kPodUidLabel] = uid;
  sb.set_runtime_handler(handler);
  sb.set_created_at(created);
  return sb;
}

class CriSandboxHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgsel-sandbox-XXXXXX";
    dir_ = mkdtemp(tmpl);
    socket_ = dir_ + "/cri.sock";
    grpc::ServerBuilder b;
    b.AddListeningPort("unix:" + socket_, grpc::InsecureServerCredentials());
    b.RegisterService(&fake_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    server_->Shutdown();
    unlink(socket_.c_str());
    rmdir(dir_.c_str());
  }
  FakeRuntime fake_;
  std::string dir_, socket_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(CriSandboxHandlersTest, TheReadySandboxOfThePullingPodAttemptGivesTheHandler) {
  {
    absl::MutexLock lock(&fake_.mu);
    fake_.sandboxes = {
        Sandbox("old", "web-0", "uid-1", 0, false, "runc", 1),   // stopped, earlier attempt
        Sandbox("now", "web-0", "uid-1", 1, true, "runc-b", 2),  // this pull's
        Sandbox("other", "web-1", "uid-2", 1, true, "kata", 3),  // another pod
    };
  }
  CriSandboxHandlers lookup(UnixChannel(socket_));
  auto got = lookup.HandlerOf({"web-0", "uid-1", "shop", 1}, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "runc-b");
  // Asked as described: READY sandboxes carrying the pod's uid label.
  absl::MutexLock lock(&fake_.mu);
  EXPECT_EQ(fake_.asked.filter().state().state(), runtime::v1::SANDBOX_READY);
  EXPECT_EQ(fake_.asked.filter().label_selector().at(kPodUidLabel), "uid-1");
  EXPECT_EQ(fake_.asked.filter().label_selector().size(), 1u);
}

TEST_F(CriSandboxHandlersTest, NoMatchingSandboxOrAFailingRuntimeIsAnError) {
  {
    absl::MutexLock lock(&fake_.mu);
    fake_.sandboxes = {Sandbox("now", "web-0", "uid-1", 1, true, "runc-b", 2)};
  }
  CriSandboxHandlers lookup(UnixChannel(socket_));
  struct Case {
    const char* name;
    PodIdentity pod;
    absl::StatusCode want;
  };
  for (const Case& c : {
           Case{"another attempt", {"web-0", "uid-1", "shop", 0}, absl::StatusCode::kNotFound},
           Case{"another name", {"web-9", "uid-1", "shop", 1}, absl::StatusCode::kNotFound},
           Case{"another namespace", {"web-0", "uid-1", "dev", 1}, absl::StatusCode::kNotFound},
           Case{"unknown uid", {"web-0", "uid-7", "shop", 1}, absl::StatusCode::kNotFound},
       }) {
    auto got = lookup.HandlerOf(c.pod, absl::Now() + absl::Seconds(5));
    EXPECT_EQ(got.status().code(), c.want) << c.name;
  }
  {
    absl::MutexLock lock(&fake_.mu);
    fake_.fail = true;
  }
  auto got = lookup.HandlerOf({"web-0", "uid-1", "shop", 1}, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("ListPodSandbox"), absl::string_view::npos);
}

TEST(CriSandboxHandlersNoServerTest, ASocketNobodyServesEndsByTheDeadline) {
  CriSandboxHandlers lookup(UnixChannel("/nonexistent/imgsel-test.sock"));
  auto got = lookup.HandlerOf({"web-0", "uid-1", "shop", 0}, absl::Now() + absl::Milliseconds(300));
  EXPECT_FALSE(got.ok());
}

}  // namespace
}  // namespace imgsel::plugin
