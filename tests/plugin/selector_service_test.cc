// The Selector API over a real gRPC server on a Unix socket, with the real
// pipeline and no registry: what a client sends that imgseld must refuse,
// and what a refused request must not leave behind.
#include "plugin/selector_service.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "config/config.h"
#include "imgsel/v1/selector.grpc.pb.h"
#include "matcher/host_profile.h"
#include "oci/utf8.h"
#include "plugin/upstream.h"
#include "selector/memory_gate.h"
#include "tests/integration/loopback_server.h"

namespace imgsel::plugin {
namespace {

namespace v1 = imgsel::v1;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Nothing listens on port 1 of loopback: a selection by this reference
// ends at once with "connection refused", which the answer reports as a
// fallback.
constexpr char kUnreachable[] = "127.0.0.1:1/app:v1";

// A registry on loopback that answers every GET with HTTP 500 and
// `error_code` as the error's code (and HEAD with 405, so the client goes
// on to a GET). Serves until destroyed; each wait is bounded.
class FailingRegistry {
 public:
  explicit FailingRegistry(std::string error_code) : code_(std::move(error_code)) {
    fd_ = integration::ListenOnLoopback(16, &port_);
    if (fd_ >= 0) thread_ = std::thread([this] { Serve(); });
  }
  ~FailingRegistry() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) close(fd_);
  }
  int port() const { return port_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int conn = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) continue;
      timeval tv{2, 0};
      setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      std::string request;
      char buf[2048];
      while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
        const ssize_t n = recv(conn, buf, sizeof(buf), 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      const std::string body = absl::StrCat(R"({"errors":[{"code":")", code_, R"("}]})");
      const std::string answer =
          absl::StartsWith(request, "HEAD ")
              ? "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
              : absl::StrCat(
                    "HTTP/1.1 500 Internal Server Error\r\nContent-Type: "
                    "application/json\r\nContent-Length: ",
                    body.size(), "\r\nConnection: close\r\n\r\n", body);
      (void)!send(conn, answer.data(), answer.size(), MSG_NOSIGNAL);
      close(conn);
    }
  }

  std::string code_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class SelectorServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgseld-api-XXXXXX";
    dir_ = mkdtemp(tmpl);
    auto host = ParseHostProfile(ReadFile(std::string(IMGSEL_EXAMPLES) + "/hosts/amd64-v3.json"),
                                 "amd64-v3.json");
    ASSERT_TRUE(host.ok()) << host.status();
    Serve(*host);
  }

  void TearDown() override {
    StopServing();
    std::filesystem::remove_all(dir_);
  }

  // (Re)starts the service for `host` on a socket of its own.
  void Serve(const HostProfile& host) {
    StopServing();
    Config config;
    config.registry.connect_timeout = absl::Seconds(2);
    config.registry.request_timeout = absl::Seconds(2);
    auto pipeline = SelectionPipeline::Create(config, host);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    service_ = std::make_unique<SelectorService>(
        std::shared_ptr<SelectionPipeline>(std::move(*pipeline)), &metrics_, absl::Seconds(2));
    const std::string socket = absl::StrCat(dir_, "/api-", ++servers_, ".sock");
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Selector::NewStub(UnixChannel(socket));
  }

  void StopServing() {
    if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    server_.reset();
  }

  grpc::Status Select(const v1::SelectRequest& req, v1::SelectResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    return stub_->Select(&ctx, req, resp);
  }

  std::string dir_;
  int servers_ = 0;
  Metrics metrics_;
  std::unique_ptr<SelectorService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Selector::Stub> stub_;
};

// More refused by-reference Selects than there are registry slots: each is
// INVALID_ARGUMENT, and a good request afterwards still gets a slot.
TEST_F(SelectorServiceTest, RefusedRequestsLeaveEveryRegistrySlotFree) {
  struct Bad {
    const char* what;
    void (*spoil)(v1::SelectRequest&);
  };
  const Bad bads[] = {
      {"policy", [](v1::SelectRequest& r) { r.set_policy(static_cast<v1::Policy>(9)); }},
      {"view", [](v1::SelectRequest& r) { r.set_view(static_cast<v1::SelectView>(7)); }},
      {"auth", [](v1::SelectRequest& r) { r.mutable_auth()->set_auth("%%% not base64"); }},
  };
  for (int i = 0; i < SelectorService::kMaxRegistrySelects + 30; ++i) {
    const Bad& bad = bads[i % std::size(bads)];
    v1::SelectRequest req;
    req.set_reference(kUnreachable);
    bad.spoil(req);
    v1::SelectResponse resp;
    grpc::Status s = Select(req, &resp);
    ASSERT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << bad.what << " #" << i << ": " << s.error_message();
  }
  v1::SelectRequest good;
  good.set_reference(kUnreachable);
  good.set_timeout_ms(5000);
  v1::SelectResponse resp;
  grpc::Status s = Select(good, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(resp.fallback());
  EXPECT_FALSE(resp.fallback_reason().empty());
}

// A registry that takes connections (the kernel's backlog) and never
// answers: a selection from it holds its place until its budget ends.
class SilentRegistry {
 public:
  SilentRegistry() { fd_ = integration::ListenOnLoopback(256, &port_); }
  ~SilentRegistry() {
    if (fd_ >= 0) close(fd_);
  }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// One registry's share of the places (a quarter of kMaxRegistrySelects)
// taken, one more selection from it is refused RESOURCE_EXHAUSTED and
// counted `busy`, not `invalid`: an operator's alert on invalid requests
// must not fire because the node is full.
TEST_F(SelectorServiceTest, SelectionsPastARegistrysShareAreRefusedAndCountedBusy) {
  SilentRegistry silent;
  ASSERT_NE(silent.port(), 0);
  const std::string ref = absl::StrCat("127.0.0.1:", silent.port(), "/app:v1");
  constexpr int kCalls = SelectorService::kMaxRegistrySelects / 4 + 1;
  std::vector<grpc::StatusCode> codes(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] {
      v1::SelectRequest req;
      req.set_reference(ref);
      req.set_timeout_ms(3000);
      v1::SelectResponse resp;
      codes[i] = Select(req, &resp).error_code();
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(std::count(codes.begin(), codes.end(), grpc::StatusCode::RESOURCE_EXHAUSTED), 1);
  EXPECT_EQ(std::count(codes.begin(), codes.end(), grpc::StatusCode::OK), kCalls - 1);
  const std::string metrics = metrics_.Render();
  EXPECT_TRUE(absl::StrContains(metrics, "imgseld_selects_total{result=\"busy\"} 1\n")) << metrics;
  EXPECT_TRUE(absl::StrContains(metrics, "imgseld_selects_total{result=\"invalid\"} 0\n"))
      << metrics;
}

// A control character in any credential field: INVALID_ARGUMENT naming the
// field, without the value, and no registry is asked.
TEST_F(SelectorServiceTest, CredentialsWithControlCharactersAreRefusedByField) {
  const std::string secret = "s3cret\r\nX-Injected: yes";
  struct Case {
    const char* field;
    void (*set)(v1::RegistryAuth&, const std::string&);
  };
  const Case cases[] = {
      {"auth.username", [](v1::RegistryAuth& a, const std::string& v) { a.set_username(v); }},
      {"auth.password", [](v1::RegistryAuth& a, const std::string& v) { a.set_password(v); }},
      {"auth.auth", [](v1::RegistryAuth& a, const std::string& v) { a.set_auth(v); }},
      {"auth.identity_token",
       [](v1::RegistryAuth& a, const std::string& v) { a.set_identity_token(v); }},
      {"auth.registry_token",
       [](v1::RegistryAuth& a, const std::string& v) { a.set_registry_token(v); }},
      {"auth.auth (decoded)",
       [](v1::RegistryAuth& a, const std::string& v) {
         a.set_auth(absl::Base64Escape("user:" + v));
       }},
  };
  for (const Case& c : cases) {
    v1::SelectRequest req;
    req.set_reference(kUnreachable);
    c.set(*req.mutable_auth(), secret);
    v1::SelectResponse resp;
    grpc::Status s = Select(req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.field;
    EXPECT_TRUE(absl::StartsWith(s.error_message(), absl::StrCat(c.field, ":")))
        << c.field << ": " << s.error_message();
    EXPECT_FALSE(absl::StrContains(s.error_message(), "s3cret")) << c.field;
  }
}

// A registry's error code of 3-byte characters, which the registry client
// cuts at 64 bytes, inside a character: the fallback answer still parses
// (a proto3 client refuses the whole answer over one string that is not
// UTF-8). The registry's own text reaches the reason escaped (the registry
// client writes bytes past ASCII as \xNN), so nothing of it is cut inside
// a character.
TEST_F(SelectorServiceTest, AFallbackReasonCutInsideACharacterStillParses) {
  std::string code;
  for (int i = 0; i < 30; ++i) code += "\xE2\x80\x98";  // U+2018, 90 bytes
  FailingRegistry registry(code);
  ASSERT_NE(registry.port(), 0);
  v1::SelectRequest req;
  req.set_reference(absl::StrCat("127.0.0.1:", registry.port(), "/app:v1"));
  req.set_timeout_ms(5000);
  v1::SelectResponse resp;
  grpc::Status s = Select(req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_TRUE(resp.fallback());
  EXPECT_TRUE(absl::StrContains(resp.fallback_reason(), "HTTP 500 \\xe2\\x80\\x98"))
      << absl::CEscape(resp.fallback_reason());
  EXPECT_EQ(imgsel::FirstNonUtf8Byte(resp.fallback_reason()), absl::string_view::npos)
      << absl::CEscape(resp.fallback_reason());
}

// An index handed in past the memory gate's threshold takes a share of the
// budget; the share goes with the answer and is given back once the answer
// is out, whatever the view, so a stream of large selections never drains
// the budget. The answer is the one the same index gets unpadded.
TEST_F(SelectorServiceTest, ALargeIndexGivesItsMemoryShareBackOnceAnswered) {
  const std::string profile = std::string(IMGSEL_EXAMPLES) + "/hosts/amd64-v3.json";
  auto host = ParseHostProfile(ReadFile(profile), profile);
  ASSERT_TRUE(host.ok()) << host.status();
  Serve(*host);
  const std::string index =
      ReadFile(std::string(IMGSEL_EXAMPLES) +
               "/layout/blobs/sha256/"
               "25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7");
  ASSERT_FALSE(index.empty());
  v1::SelectRequest small;
  small.set_index(index);
  v1::SelectResponse expected;
  ASSERT_TRUE(Select(small, &expected).ok());
  ASSERT_FALSE(expected.selected().digest().empty());
  ASSERT_EQ(MemoryGate::Process().in_use(), 0u);

  struct Case {
    const char* what;
    v1::SelectView view;
  };
  for (const Case& c :
       {Case{"full answer", v1::SELECT_VIEW_FULL}, Case{"basic view", v1::SELECT_VIEW_BASIC}}) {
    v1::SelectRequest large;
    large.set_index(index + std::string(kUngatedInputBytes, ' '));
    large.set_view(c.view);
    for (int i = 0; i < 3; ++i) {
      v1::SelectResponse resp;
      grpc::Status s = Select(large, &resp);
      ASSERT_TRUE(s.ok()) << c.what << ": " << s.error_message();
      EXPECT_EQ(resp.selected().digest(), expected.selected().digest()) << c.what;
    }
    // gRPC lets go of the answer's bytes when it has sent them, a moment
    // after the client has them.
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (MemoryGate::Process().in_use() != 0 && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_EQ(MemoryGate::Process().in_use(), 0u) << c.what;
  }
}

// Host facts the probe read (os-release, uname) need not be UTF-8; the
// HostProfile answer is, or no client could read it.
TEST_F(SelectorServiceTest, HostProfileStringsAreUtf8) {
  HostProfile host;
  host.platform.os = "linux";
  host.platform.architecture = "amd64";
  host.platform.os_version = "6.1.0-\xFF\xC3";
  host.platform.os_features = {"feat\xC0\xAF"};
  host.features = {"avx2", "odd\xE2\x80"};
  Serve(host);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
  v1::HostProfileRequest req;
  v1::HostProfileResponse resp;
  grpc::Status s = stub_->HostProfile(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_EQ(resp.platform().os_version(), "6.1.0-\xEF\xBF\xBD");
  EXPECT_EQ(resp.platform().os_features(0), "feat\xEF\xBF\xBD\xEF\xBF\xBD");
  ASSERT_EQ(resp.features_size(), 2);
  EXPECT_EQ(resp.features(1), "odd");
  EXPECT_TRUE(absl::StrContains(resp.profile_json(), "\"platform\""));
}

}  // namespace
}  // namespace imgsel::plugin
