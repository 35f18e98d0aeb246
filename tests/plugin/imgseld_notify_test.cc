// imgseld and its service manager: the messages `Type=notify` relies on,
// read from a NOTIFY_SOCKET the test binds (a Unix datagram socket in a temp
// dir, as systemd's own). imgseld runs with a saved host profile and no
// containerd: none is needed to start, to answer health checks or to stop.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "imgsel/v1/selector.grpc.pb.h"

#ifndef IMGSELD_BINARY
#error "IMGSELD_BINARY must name the imgseld binary"
#endif
#ifndef IMGSEL_EXAMPLES
#error "IMGSEL_EXAMPLES must name the examples directory"
#endif

namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A bound Unix socket of `type` at `path`, or -1.
int BindUnix(const std::string& path, int type) {
  const int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

bool Connects(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// The gRPC health status the socket at `path` answers, or the call's error.
std::string Health(const std::string& path) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) return absl::StrCat("error ", s.error_code());
  return resp.status() == grpc::health::v1::HealthCheckResponse::SERVING ? "SERVING" : "other";
}

// The status of a Selector API HostProfile call on the socket at `path`.
grpc::StatusCode HostProfile(const std::string& path) {
  auto stub = imgsel::v1::Selector::NewStub(
      grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  imgsel::v1::HostProfileRequest req;
  imgsel::v1::HostProfileResponse resp;
  return stub->HostProfile(&ctx, req, &resp).error_code();
}

class ImgseldNotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgseld-notify-XXXXXX";
    dir_ = mkdtemp(tmpl);
    notify_path_ = dir_ + "/notify";
    notify_fd_ = BindUnix(notify_path_, SOCK_DGRAM);
    ASSERT_GE(notify_fd_, 0) << strerror(errno);
    api_ = dir_ + "/imgsel.sock";
    cri_ = dir_ + "/cri.sock";
    config_ = dir_ + "/imgsel.toml";
    std::ofstream(config_) << "version = 1\n[server]\nsocket = \"" << api_ << "\"\ncri_socket = \""
                           << cri_ << "\"\ncontainerd_socket = \"" << dir_
                           << "/containerd.sock\"\ndrain_timeout = \"1s\"\n";
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(notify_fd_);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Starts imgseld with NOTIFY_SOCKET set; `fds` become descriptors 3, 4, ...
  // with LISTEN_FDNAMES `names` (socket activation) when not empty.
  void Start(const std::vector<int>& fds = {}, const std::string& names = "") {
    log_ = dir_ + "/imgseld.log";
    pid_ = fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      std::vector<int> moved;
      for (int fd : fds) moved.push_back(fcntl(fd, F_DUPFD, 100));
      for (size_t i = 0; i < moved.size(); ++i) dup2(moved[i], 3 + static_cast<int>(i));
      const int log = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(log, 1);
      dup2(log, 2);
      setenv("NOTIFY_SOCKET", notify_path_.c_str(), 1);
      if (!fds.empty()) {
        setenv("LISTEN_PID", std::to_string(getpid()).c_str(), 1);
        setenv("LISTEN_FDS", std::to_string(fds.size()).c_str(), 1);
        setenv("LISTEN_FDNAMES", names.c_str(), 1);
      }
      const std::string profile = std::string(IMGSEL_EXAMPLES) + "/hosts/amd64-v3.json";
      execl(IMGSELD_BINARY, IMGSELD_BINARY, "--config", config_.c_str(), "--host-profile",
            profile.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }

  // The next message imgseld sends its service manager, "" after `wait`.
  std::string NextMessage(absl::Duration wait = absl::Seconds(20)) {
    pollfd p{notify_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(wait))) != 1) return "";
    char buf[4096];
    const ssize_t n = recv(notify_fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }

  // Exit status of imgseld within `wait`, -1 when it is still running.
  int WaitExit(absl::Duration wait) {
    const absl::Time end = absl::Now() + wait;
    int status = 0;
    while (absl::Now() < end) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return -1;
  }

  std::string dir_, notify_path_, api_, cri_, config_, log_;
  int notify_fd_ = -1;
  pid_t pid_ = -1;
};

// READY=1 is the first message, and at that moment both sockets accept and
// the Selector API answers SERVING: a service manager (and whatever waits
// on `systemctl start`) can send calls the instant it is told. A reload is
// bracketed by RELOADING=1 and READY=1; SIGTERM says STOPPING=1 before the
// drain, and the exit is clean.
TEST_F(ImgseldNotifyTest, ReadyOnlyOnceServingThenReloadingAndStopping) {
  Start();
  const std::string ready = NextMessage();
  ASSERT_TRUE(absl::StartsWith(ready, "READY=1\n")) << ready << ReadFile(log_);
  EXPECT_TRUE(Connects(cri_)) << "READY=1 came before the CRI socket accepted";
  EXPECT_TRUE(Connects(api_)) << "READY=1 came before the API socket accepted";
  EXPECT_EQ(Health(api_), "SERVING");
  EXPECT_TRUE(absl::StrContains(ready, "STATUS=imgseld serving: Selector API " + api_)) << ready;

  kill(pid_, SIGHUP);
  const std::string reloading = NextMessage();
  EXPECT_TRUE(absl::StartsWith(reloading, "RELOADING=1\nMONOTONIC_USEC=")) << reloading;
  const std::string reloaded = NextMessage();
  EXPECT_TRUE(absl::StartsWith(reloaded, "READY=1\nSTATUS=reload: " + config_ + " applied"))
      << reloaded;

  // A file the reload refuses: still READY again, saying so.
  std::ofstream(config_, std::ios::app) << "select_timeout = \"soon\"\n";
  kill(pid_, SIGHUP);
  EXPECT_TRUE(absl::StartsWith(NextMessage(), "RELOADING=1\n"));
  const std::string refused = NextMessage();
  EXPECT_TRUE(absl::StartsWith(refused, "READY=1\nSTATUS=reload refused")) << refused;

  kill(pid_, SIGTERM);
  const std::string stopping = NextMessage();
  EXPECT_TRUE(absl::StartsWith(stopping, "STOPPING=1\nSTATUS=draining")) << stopping;
  const int status = WaitExit(absl::Seconds(10));
  ASSERT_NE(status, -1) << "imgseld did not stop";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << ReadFile(log_);
}

// A start that fails (here: the API socket's path is taken by a file) never
// says READY=1: systemd fails the start instead of sending calls.
TEST_F(ImgseldNotifyTest, NoReadyWhenTheStartFails) {
  std::ofstream(api_) << "not a socket\n";
  Start();
  const int status = WaitExit(absl::Seconds(20));
  ASSERT_NE(status, -1) << "imgseld did not give up";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_EQ(NextMessage(absl::Milliseconds(100)), "") << ReadFile(log_);
}

// Named socket activation (FileDescriptorName=): each descriptor serves the
// role its name says, wherever it is bound and in whatever order it comes;
// the paths in the config are then not used at all.
TEST_F(ImgseldNotifyTest, ActivatedSocketsServeTheRoleTheirNameSays) {
  const std::string first = dir_ + "/first.sock", second = dir_ + "/second.sock";
  const int first_fd = BindUnix(first, SOCK_STREAM), second_fd = BindUnix(second, SOCK_STREAM);
  ASSERT_GE(first_fd, 0);
  ASSERT_GE(second_fd, 0);
  ASSERT_EQ(listen(first_fd, 16), 0);
  ASSERT_EQ(listen(second_fd, 16), 0);
  Start({first_fd, second_fd}, "cri:selector");
  const std::string ready = NextMessage();
  ASSERT_TRUE(absl::StartsWith(ready, "READY=1\n")) << ready << ReadFile(log_);
  EXPECT_EQ(HostProfile(second), grpc::StatusCode::OK) << "the descriptor named selector";
  // The CRI socket serves the image service only: the Selector API is not
  // there.
  EXPECT_EQ(HostProfile(first), grpc::StatusCode::UNIMPLEMENTED) << "the descriptor named cri";
  EXPECT_FALSE(fs::exists(api_)) << "created a socket although one was passed";
  EXPECT_FALSE(fs::exists(cri_)) << "created a socket although one was passed";
  close(first_fd);
  close(second_fd);
  kill(pid_, SIGTERM);
  EXPECT_TRUE(absl::StartsWith(NextMessage(), "STOPPING=1\n"));
  EXPECT_NE(WaitExit(absl::Seconds(10)), -1);
}

}  // namespace
