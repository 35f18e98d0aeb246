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
#include "plugin/reactor_handover.h"

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
  // A backoff of 20 ms growing to at most 200 ms. Uncapped, gRPC's (x1.6
  // each time, jittered) would try at about 0, 0.02, 0.05, 0.1, 0.19, 0.32,
  // 0.53, 0.86, 1.4, 2.3, 3.6 and 5.7 s, and next some 3 s after that: after
  // 6 s of failed calls only the cap brings the channel back in time.
  const ReconnectBackoff backoff{.initial_ms = 20, .max_ms = 200};
  std::shared_ptr<grpc::Channel> channel = UnixChannel(path, backoff);
  const absl::Time down_until = absl::Now() + absl::Seconds(6);
  while (absl::Now() < down_until) {
    EXPECT_FALSE(Check(*channel, absl::Milliseconds(200)).ok());
    absl::SleepFor(absl::Milliseconds(100));
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
          handover_.Release();
        }
        void OnReadDone(bool) override {
          ReactorHandover::Reaction reaction(handover_);
          StartWriteAndFinish(&response_, {}, grpc::Status::OK);
        }
        void OnDone() override {
          if (handover_.Drop()) delete this;
        }

       private:
        grpc::ByteBuffer request_, response_;
        ReactorHandover handover_;
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
  EXPECT_LT(took, absl::Milliseconds(backoff.max_ms) + absl::Seconds(1))
      << absl::FormatDuration(took);
}

}  // namespace
}  // namespace imgsel::plugin
