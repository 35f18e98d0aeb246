#include "plugin/upstream.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace imgsel::plugin {
namespace {

grpc::Status Check(grpc::Channel& channel, absl::Duration wait) {
  auto health = grpc::health::v1::Health::NewStub(
      std::shared_ptr<grpc::Channel>(&channel, [](grpc::Channel*) {}));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + wait));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  return health->Check(&ctx, req, &resp);
}

// containerd down for a while, then back: the channel reaches it within
// about a second, not after gRPC's default backoff, which by then has grown
// to many seconds (and reaches two minutes).
TEST(UnixChannelTest, ReconnectsSoonAfterTheServerIsBack) {
  char tmpl[] = "/tmp/imgsel-upstream-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/containerd.sock";
  std::shared_ptr<grpc::Channel> channel = UnixChannel(path);
  // 45 s of failed calls: with gRPC's default backoff (1 s, x1.6 each
  // time, jittered) the attempts come at about 0, 1, 2.6, 5.2, 9.3, 15.8,
  // 26.3 and 43 s, and the next one some 27 s after that.
  const absl::Time down_until = absl::Now() + absl::Seconds(45);
  while (absl::Now() < down_until) {
    EXPECT_FALSE(Check(*channel, absl::Milliseconds(200)).ok());
    absl::SleepFor(absl::Milliseconds(300));
  }
  // containerd's stand-in: answers every call with an empty message, which
  // a HealthCheckResponse reads as UNKNOWN status, an OK call.
  class AnswerEverything final : public grpc::CallbackGenericService {
    grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
      class Reactor final : public grpc::ServerGenericBidiReactor {
       public:
        Reactor() {
          grpc::Slice nothing("", 0);
          response_ = grpc::ByteBuffer(&nothing, 1);
          StartRead(&request_);
        }
        void OnReadDone(bool) override { StartWriteAndFinish(&response_, {}, grpc::Status::OK); }
        void OnDone() override { delete this; }

       private:
        grpc::ByteBuffer request_, response_;
      };
      return new Reactor();
    }
  } service;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + path, grpc::InsecureServerCredentials());
  builder.RegisterCallbackGenericService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  const absl::Time back = absl::Now();
  bool reached = false;
  while (!reached && absl::Now() - back < absl::Seconds(8)) {
    reached = Check(*channel, absl::Milliseconds(200)).ok();
    if (!reached) absl::SleepFor(absl::Milliseconds(100));
  }
  const absl::Duration took = absl::Now() - back;
  server->Shutdown();
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(reached);
  // The bound is the backoff's cap plus a connection attempt and a call.
  EXPECT_LT(took, absl::Milliseconds(kMaxReconnectBackoffMs) + absl::Seconds(1))
      << absl::FormatDuration(took);
}

}  // namespace
}  // namespace imgsel::plugin
