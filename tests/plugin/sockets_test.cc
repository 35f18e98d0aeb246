#include "plugin/sockets.h"

#include <dirent.h>
#include <fcntl.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "plugin/reactor_handover.h"
#include "plugin/upstream.h"

namespace imgsel::plugin {
namespace {

class SocketsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgseld-sock-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A listening socket at `path`; closed (but not unlinked) when `keep` is false.
  int Listen(const std::string& path, bool keep) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd, 1), 0);
    if (!keep) {
      close(fd);
      return -1;
    }
    return fd;
  }

  std::string dir_;
};

TEST_F(SocketsTest, CreatesTheDirectory) {
  const std::string path = dir_ + "/run/imgsel/cri.sock";
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  EXPECT_TRUE(std::filesystem::is_directory(dir_ + "/run/imgsel"));
}

TEST_F(SocketsTest, ReplacesAStaleSocket) {
  const std::string path = dir_ + "/stale.sock";
  Listen(path, false);
  ASSERT_TRUE(std::filesystem::exists(path));
  ASSERT_TRUE(PrepareSocketPath(path).ok());
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(SocketsTest, RefusesALiveSocket) {
  const std::string path = dir_ + "/live.sock";
  int fd = Listen(path, true);
  absl::Status s = PrepareSocketPath(path);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  EXPECT_TRUE(std::filesystem::exists(path));
  close(fd);
}

TEST_F(SocketsTest, RefusesOtherFiles) {
  const std::string path = dir_ + "/file";
  std::ofstream(path) << "x";
  EXPECT_EQ(PrepareSocketPath(path).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(path));
  EXPECT_FALSE(PrepareSocketPath(dir_ + "/" + std::string(200, 'x')).ok());
}

TEST_F(SocketsTest, SocketModeIsOwnerAndGroup) {
  const std::string path = dir_ + "/mode.sock";
  int fd = Listen(path, true);
  ASSERT_TRUE(RestrictSocketMode(path).ok());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660);
  close(fd);
}

TEST_F(SocketsTest, ActivatedSocketsByNameThenPath) {
  std::vector<ActivatedSocket> sockets = {{3, "", "/run/imgsel/imgsel.sock"},
                                          {4, "cri", "/somewhere/else.sock"}};
  EXPECT_EQ(FindActivatedSocket(sockets, "cri", "/run/imgsel/cri.sock"), 4);
  EXPECT_EQ(FindActivatedSocket(sockets, "selector", "/run/imgsel/imgsel.sock"), 3);
  EXPECT_EQ(FindActivatedSocket(sockets, "selector", "/other.sock"), -1);
}

// What systemd passes (descriptors from 3, LISTEN_FDNAMES) is read with
// each descriptor's name and bound path; a descriptor without a name
// ("unknown" to libsystemd) has none, and is matched by its path.
TEST_F(SocketsTest, ActivatedSocketsCarryTheirNamesAndPaths) {
  const std::string cri = dir_ + "/anywhere.sock", api = dir_ + "/imgsel.sock";
  const int cri_fd = Listen(cri, true), api_fd = Listen(api, true);
  ASSERT_GE(cri_fd, 0);
  ASSERT_GE(api_fd, 0);
  // Descriptors 3 and 4 belong to the test runner: kept aside meanwhile.
  const int saved[2] = {fcntl(3, F_DUPFD_CLOEXEC, 100), fcntl(4, F_DUPFD_CLOEXEC, 100)};
  ASSERT_EQ(dup2(cri_fd, 3), 3);
  ASSERT_EQ(dup2(api_fd, 4), 4);
  setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
  setenv("LISTEN_FDS", "2", 1);
  setenv("LISTEN_FDNAMES", "cri:unknown", 1);
  const std::vector<ActivatedSocket> got = TakeActivatedSockets();
  for (int i = 0; i < 2; ++i) {
    if (saved[i] >= 0) {
      dup2(saved[i], 3 + i);
      close(saved[i]);
    } else {
      close(3 + i);
    }
  }
  close(cri_fd);
  close(api_fd);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].fd, 3);
  EXPECT_EQ(got[0].name, "cri");
  EXPECT_EQ(got[0].path, cri);
  EXPECT_EQ(got[1].fd, 4);
  EXPECT_EQ(got[1].name, "");
  EXPECT_EQ(got[1].path, api);
  EXPECT_EQ(FindActivatedSocket(got, "cri", dir_ + "/cri.sock"), 3);
  EXPECT_EQ(FindActivatedSocket(got, "selector", api), 4);
  EXPECT_EQ(getenv("LISTEN_FDNAMES"), nullptr);  // not passed on to children
}

TEST_F(SocketsTest, ActivationForAnotherProcessIsIgnored) {
  setenv("LISTEN_PID", "1", 1);
  setenv("LISTEN_FDS", "2", 1);
  EXPECT_TRUE(TakeActivatedSockets().empty());
  EXPECT_EQ(getenv("LISTEN_FDS"), nullptr);  // not passed on to children
}

// Answers every call with its own request; counts the calls whose server
// side has finished (the reactor's OnDone), so a test can wait for gRPC to
// be done with a call before it changes the process around it.
class EchoService : public grpc::CallbackGenericService {
 public:
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      explicit Reactor(EchoService* service) : service_(service) {
        StartRead(&buf_);
        handover_.Release();
      }
      void OnReadDone(bool ok) override {
        ReactorHandover::Reaction reaction(handover_);
        if (!ok) {
          Finish(grpc::Status(grpc::StatusCode::INTERNAL, "no message"));
          return;
        }
        StartWriteAndFinish(&buf_, grpc::WriteOptions(), grpc::Status::OK);
      }
      void OnDone() override {
        EchoService* service = service_;
        if (handover_.Drop()) delete this;
        absl::MutexLock lock(&service->mu_);
        ++service->finished_;
      }

     private:
      EchoService* service_;
      grpc::ByteBuffer buf_;
      ReactorHandover handover_;
    };
    return new Reactor(this);
  }

  // True once `n` calls have finished on the server, waiting up to `wait`.
  bool AwaitFinished(int n, absl::Duration wait) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return finished_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), wait);
  }

 private:
  absl::Mutex mu_;
  int finished_ ABSL_GUARDED_BY(mu_) = 0;
};

// One call on a new connection to `path`, answered within `wait`.
grpc::Status EchoCall(const std::string& path, absl::Duration wait,
                      const std::string& message = "ping") {
  grpc::GenericStub stub(UnixChannel(path));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + wait));
  grpc::ByteBuffer req = ToByteBuffer(message);
  grpc::ByteBuffer resp;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, "/test.Echo/Call", grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  return status;
}

int HighestOpenDescriptor() {
  int highest = 2;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) highest = std::max(highest, atoi(e->d_name));
    closedir(d);
  }
  return highest;
}

// The server's own settings (here, the largest message it takes) hold for
// connections the acceptor hands it, as for gRPC's own listener.
TEST_F(SocketsTest, ServerSettingsHoldOnAcceptedConnections) {
  const std::string path = dir_ + "/limits.sock";
  EchoService echo;
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(&echo);
  builder.SetMaxReceiveMessageSize(6 << 20);
  auto listener = StartServer(builder, path, -1, "[server] socket");
  ASSERT_TRUE(listener.ok()) << listener.status();
  grpc::Status five = EchoCall(path, absl::Seconds(10), std::string(5 << 20, 'x'));
  EXPECT_TRUE(five.ok()) << five.error_message();  // past gRPC's default of 4 MiB
  listener->server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
}

// A connection that arrives while the process has no descriptor left makes
// accept() fail with EMFILE. Once descriptors are free again, the socket
// must accept again: a server that stopped listening there would leave the
// API unreachable until restart.
TEST_F(SocketsTest, AcceptsAgainOnceDescriptorsAreFree) {
  const std::string path = dir_ + "/api.sock";
  EchoService echo;
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(&echo);
  auto listener = StartServer(builder, path, -1, "[server] socket");
  ASSERT_TRUE(listener.ok()) << listener.status();
  ASSERT_TRUE(EchoCall(path, absl::Seconds(5)).ok());
  // gRPC finishes the server's side of that call on its own threads after
  // the client has its answer; that work is not what this test is about,
  // so it ends before the process runs out of descriptors.
  ASSERT_TRUE(echo.AwaitFinished(1, absl::Seconds(10)));

  // Client sockets made while descriptors are there; connected once they
  // are gone, so the server's accept() is what fails.
  std::vector<int> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(HighestOpenDescriptor() + 32);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::vector<int> taken;
  for (int fd; (fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) taken.push_back(fd);
  EXPECT_EQ(errno, EMFILE);
  for (int c : clients) {
    EXPECT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << strerror(errno);
  }
  // The server's thread wakes for the connections and fails to accept them.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (listener->acceptor->deferred_accepts() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GE(listener->acceptor->deferred_accepts(), 1) << "accept() never ran out of descriptors";
  for (int fd : taken) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  for (int c : clients) close(c);

  grpc::Status again = EchoCall(path, absl::Seconds(5));
  EXPECT_TRUE(again.ok()) << again.error_code() << ": " << again.error_message();
  listener->server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
}

}  // namespace
}  // namespace imgsel::plugin
