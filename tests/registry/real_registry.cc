#include "tests/registry/real_registry.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "registry/http.h"

namespace imgsel::registry::testing {
namespace {

constexpr const char* kBinary = "/usr/bin/docker-registry";

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace

std::unique_ptr<RealRegistry> RealRegistry::Start(std::string* why) {
  if (access(kBinary, X_OK) != 0) {
    *why = absl::StrCat(kBinary, " not installed (apt-get install docker-registry)");
    return nullptr;
  }
  char tmpl[] = "/tmp/imgsel-registry-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    *why = "mkdtemp failed";
    return nullptr;
  }
  std::unique_ptr<RealRegistry> r(new RealRegistry());
  r->root_ = tmpl;
  for (int attempt = 0; attempt < 3; ++attempt) {
    int port = FreePort();
    r->host_ = absl::StrCat("127.0.0.1:", port);
    std::string config = absl::StrCat(r->root_, "/config.yml");
    std::ofstream(config) << "version: 0.1\n"
                          << "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                          << "storage:\n  filesystem:\n    rootdirectory: " << r->root_
                          << "/data\n  delete:\n    enabled: true\n"
                          << "http:\n  addr: " << r->host_ << "\n";
    std::string log = absl::StrCat(r->root_, "/registry.log");
    pid_t pid = fork();
    if (pid == 0) {
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execl(kBinary, "docker-registry", "serve", config.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    r->pid_ = pid;
    HttpTransport http;
    absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (absl::Now() < deadline) {
      HttpRequest req;
      req.url = absl::StrCat("http://", r->host_, "/v2/");
      req.connect_timeout = absl::Milliseconds(200);
      req.total_timeout = absl::Seconds(1);
      auto resp = http.Perform(req);
      if (resp.ok() && resp->status == 200) return r;
      int status;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        r->pid_ = -1;
        break;  // exited (port taken?): try another port
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    if (r->pid_ > 0) {
      kill(r->pid_, SIGKILL);
      waitpid(r->pid_, nullptr, 0);
      r->pid_ = -1;
    }
  }
  *why = absl::StrCat("docker-registry did not come up; see ", r->root_, "/registry.log");
  r->root_.clear();  // keep the log for the reader
  return nullptr;
}

RealRegistry::~RealRegistry() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  if (!root_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
}

}  // namespace imgsel::registry::testing
