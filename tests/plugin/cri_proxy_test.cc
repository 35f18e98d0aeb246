// The CRI proxy's pass-through against an in-process "containerd" that
// reports what it received: bytes, metadata, deadline and errors must come
// through unchanged in both directions.
#include "plugin/cri_proxy.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "plugin/reactor_handover.h"

namespace imgsel::plugin {
namespace {

// Echoes the request bytes; sends back the metadata it got (as trailing
// metadata "got-<key>") and the deadline it saw (initial metadata
// "deadline-ms"); a request "fail" is answered with an error and details.
class EchoUpstream : public grpc::CallbackGenericService {
 public:
  // Calls that reached this "containerd", of any method.
  std::atomic<int> calls{0};

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    calls.fetch_add(1);
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(grpc::GenericCallbackServerContext* ctx) : ctx_(ctx) {
        StartRead(&buf_);
        handover_.Release();
      }
      void OnReadDone(bool ok) override {
        ReactorHandover::Reaction reaction(handover_);
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::INTERNAL, "no message"));
          return;
        }
        for (const auto& [k, v] : ctx_->client_metadata()) {
          ctx_->AddTrailingMetadata(absl::StrCat("got-", std::string(k.data(), k.size())),
                                    std::string(v.data(), v.size()));
        }
        ctx_->AddTrailingMetadata("method", ctx_->method());
        const auto left = ctx_->deadline() - std::chrono::system_clock::now();
        ctx_->AddInitialMetadata(
            "deadline-ms",
            absl::StrCat(std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
        if (FromByteBuffer(buf_) == "fail") {
          Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "containerd says no",
                              "detail-bytes"));
          return;
        }
        StartWriteAndFinish(&buf_, grpc::WriteOptions(), grpc::Status::OK);
      }
      void OnDone() override {
        if (handover_.Drop()) delete this;
      }

     private:
      grpc::GenericCallbackServerContext* ctx_;
      grpc::ByteBuffer buf_;
      ReactorHandover handover_;
    };
    return new Reactor(ctx);
  }
};

class CriProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgseld-proxy-XXXXXX";
    dir_ = mkdtemp(tmpl);
    grpc::ServerBuilder ub;
    ub.AddListeningPort("unix:" + dir_ + "/containerd.sock", grpc::InsecureServerCredentials());
    ub.RegisterCallbackGenericService(&echo_);
    upstream_server_ = ub.BuildAndStart();
    ASSERT_NE(upstream_server_, nullptr);

    upstream_ = std::make_unique<GrpcCriUpstream>(UnixChannel(dir_ + "/containerd.sock"));
    pulls_ = std::make_unique<PullHandler>(
        [](const SelectionRequest&) -> absl::StatusOr<Selection> {
          return absl::UnavailableError("resolve: no registry in this test");
        },
        upstream_.get(), nullptr, &metrics_, nullptr);
    proxy_ = std::make_unique<CriProxy>(upstream_.get(), pulls_.get(), &metrics_, 4);
    grpc::ServerBuilder pb;
    pb.AddListeningPort("unix:" + dir_ + "/cri.sock", grpc::InsecureServerCredentials());
    pb.RegisterCallbackGenericService(proxy_.get());
    proxy_server_ = pb.BuildAndStart();
    ASSERT_NE(proxy_server_, nullptr);
    stub_ = std::make_unique<grpc::GenericStub>(UnixChannel(dir_ + "/cri.sock"));
  }

  void TearDown() override {
    proxy_server_->Shutdown();
    upstream_server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  grpc::Status Call(const std::string& method, const std::string& request, std::string* response,
                    grpc::ClientContext* ctx) {
    grpc::ByteBuffer req = ToByteBuffer(request);
    grpc::ByteBuffer resp;
    grpc::Status status;
    absl::Notification done;
    stub_->UnaryCall(ctx, method, grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
      status = std::move(s);
      done.Notify();
    });
    done.WaitForNotification();
    *response = FromByteBuffer(resp);
    return status;
  }

  static std::string Trailing(grpc::ClientContext& ctx, const std::string& key) {
    for (const auto& [k, v] : ctx.GetServerTrailingMetadata()) {
      if (std::string(k.data(), k.size()) == key) return std::string(v.data(), v.size());
    }
    return "";
  }

  std::string dir_;
  EchoUpstream echo_;
  Metrics metrics_;
  std::unique_ptr<grpc::Server> upstream_server_;
  std::unique_ptr<GrpcCriUpstream> upstream_;
  std::unique_ptr<PullHandler> pulls_;
  std::unique_ptr<CriProxy> proxy_;
  std::unique_ptr<grpc::Server> proxy_server_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

TEST_F(CriProxyTest, BytesMetadataAndDeadlineSurvive) {
  // Not a message this build knows: fields 1..3 plus field 999.
  const std::string request(
      "\x0a\x03"
      "abc\x10\x01\x1a\x00\xba\x3e\x04"
      "new!",
      15);
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-kubelet", "v1.30");
  ctx.AddMetadata("trace-bin", std::string("\x00\x01\x02", 3));
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::string response;
  grpc::Status s = Call("/runtime.v1.ImageService/ListImages", request, &response, &ctx);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response, request);
  EXPECT_EQ(Trailing(ctx, "got-x-kubelet"), "v1.30");
  EXPECT_EQ(Trailing(ctx, "got-trace-bin"), std::string("\x00\x01\x02", 3));
  EXPECT_EQ(Trailing(ctx, "method"), "/runtime.v1.ImageService/ListImages");
  int64_t left_ms = 0;
  for (const auto& [k, v] : ctx.GetServerInitialMetadata()) {
    if (std::string(k.data(), k.size()) == "deadline-ms") {
      ASSERT_TRUE(absl::SimpleAtoi(std::string(v.data(), v.size()), &left_ms));
    }
  }
  // Passed on (gRPC rounds the timeout header up a little); without it the
  // upstream call would have no deadline at all.
  EXPECT_GT(left_ms, 0);
  EXPECT_LT(left_ms, 60000);
}

TEST_F(CriProxyTest, ErrorsComeBackAsContainerdSentThem) {
  grpc::ClientContext ctx;
  std::string response;
  grpc::Status s = Call("/runtime.v1alpha2.ImageService/ImageStatus", "fail", &response, &ctx);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "containerd says no");
  EXPECT_EQ(s.error_details(), "detail-bytes");
}

TEST_F(CriProxyTest, PullWithoutSelectionGoesUpstreamAsSent) {
  // The selection fails (no registry): the request reaches containerd as sent.
  const std::string request(
      "\x0a\x08\x0a\x06"
      "app:v1\xba\x3e\x01x",
      14);
  grpc::ClientContext ctx;
  std::string response;
  grpc::Status s = Call("/runtime.v1.ImageService/PullImage", request, &response, &ctx);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(response, request);
  EXPECT_EQ(Trailing(ctx, "method"), "/runtime.v1.ImageService/PullImage");
  EXPECT_EQ(metrics_.fallbacks(FallbackReason::kResolve), 1u);
}

// The CRI socket is no door to the rest of containerd's API: only the
// image service (both CRI versions) and the health check are passed on;
// anything else is UNIMPLEMENTED before a byte goes upstream.
TEST_F(CriProxyTest, OnlyTheImageServiceReachesContainerd) {
  struct Case {
    const char* method;
    bool served;
  };
  const Case cases[] = {
      {"/runtime.v1.ImageService/ListImages", true},
      {"/runtime.v1.ImageService/ImageFsInfo", true},
      {"/runtime.v1alpha2.ImageService/ImageStatus", true},
      {"/runtime.v1.ImageService/AMethodOfANewerCri", true},
      {"/grpc.health.v1.Health/Check", true},
      {"/containerd.services.namespaces.v1.Namespaces/Create", false},
      {"/containerd.services.images.v1.Images/Delete", false},
      {"/containerd.services.tasks.v1.Tasks/Create", false},
      {"/runtime.v1.RuntimeService/Version", false},
      {"/runtime.v1alpha2.RuntimeService/RunPodSandbox", false},
      {"/grpc.health.v1.Health/Watch", false},
      {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", false},
      {"/runtime.v1.ImageServiceX/ListImages", false},
      {"/runtime.v1.ImageService/", false},
      {"/runtime.v1.ImageService/List/Images", false},
      {"/x/runtime.v1.ImageService/ListImages", false},
      {"/runtime.v1beta1.ImageService/ListImages", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(CriProxyServes(c.method), c.served) << c.method;
    const int before = echo_.calls.load();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    std::string response;
    grpc::Status s = Call(c.method,
                          "\x0a\x03"
                          "abc",
                          &response, &ctx);
    if (c.served) {
      EXPECT_TRUE(s.ok()) << c.method << ": " << s.error_message();
      EXPECT_EQ(Trailing(ctx, "method"), c.method);
      EXPECT_EQ(echo_.calls.load(), before + 1) << c.method;
    } else {
      EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << c.method;
      EXPECT_EQ(echo_.calls.load(), before) << c.method << " reached containerd";
    }
  }
}

}  // namespace
}  // namespace imgsel::plugin
