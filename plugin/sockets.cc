#include "plugin/sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "plugin/decision_log.h"

namespace imgsel::plugin {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::Status(absl::ErrnoToStatusCode(errno),
                      absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

bool FillAddress(const std::string& path, sockaddr_un* addr) {
  memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr->sun_path)) return false;
  memcpy(addr->sun_path, path.data(), path.size());
  return true;
}

}  // namespace

absl::Status PrepareSocketPath(const std::string& path) {
  sockaddr_un addr;
  if (path.empty() || !FillAddress(path, &addr)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", path,
                                                   "\" is empty or longer than ",
                                                   sizeof(addr.sun_path) - 1, " bytes"));
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
      std::filesystem::create_directories(dir, ec);
      if (ec) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
      }
      chmod(dir.c_str(), 0750);
    }
  }
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return Errno("cannot stat", path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " exists and is not a socket; remove it or choose another path"));
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket() for", path);
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  close(fd);
  if (rc == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat(path, " is in use by a running process (another imgseld?)"));
  }
  if (err != ECONNREFUSED && err != ENOENT) {
    errno = err;
    return Errno("cannot probe", path);
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT)
    return Errno("cannot remove stale socket", path);
  return absl::OkStatus();
}

absl::Status RestrictSocketMode(const std::string& path) {
  if (chmod(path.c_str(), 0660) != 0) return Errno("cannot chmod", path);
  return absl::OkStatus();
}

std::vector<ActivatedSocket> TakeActivatedSockets() {
  std::vector<ActivatedSocket> out;
  char** names = nullptr;
  // Checks LISTEN_PID, sets close-on-exec on each descriptor and removes
  // the variables, so children (probe hooks) inherit none of it.
  const int count = sd_listen_fds_with_names(/*unset_environment=*/1, &names);
  for (int i = 0; i < count && i < kMaxActivatedSockets; ++i) {
    ActivatedSocket s;
    s.fd = SD_LISTEN_FDS_START + i;
    // "unknown" is what libsystemd reports for a descriptor without a name.
    if (names != nullptr && names[i] != nullptr && strcmp(names[i], "unknown") != 0) {
      s.name = names[i];
    }
    sockaddr_un addr;
    socklen_t len = sizeof(addr);
    if (getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0 &&
        addr.sun_family == AF_UNIX && len > offsetof(sockaddr_un, sun_path)) {
      s.path =
          std::string(addr.sun_path, strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path)));
    }
    out.push_back(std::move(s));
  }
  if (names != nullptr) {
    for (int i = 0; i < count; ++i) free(names[i]);
    free(names);
  }
  return out;
}

int FindActivatedSocket(const std::vector<ActivatedSocket>& sockets, const std::string& role,
                        const std::string& path) {
  for (const ActivatedSocket& s : sockets) {
    if (s.name == role) return s.fd;
  }
  for (const ActivatedSocket& s : sockets) {
    if (!s.path.empty() && s.path == path) return s.fd;
  }
  return -1;
}

Acceptor::Acceptor(int listen_fd, grpc::Server* server, bool owns_fd)
    : listen_fd_(listen_fd), owns_fd_(owns_fd), server_(server) {
  // A connection reset between poll() and accept() must not block the
  // thread (and Stop) in accept().
  if (const int flags = fcntl(listen_fd_, F_GETFL); flags >= 0) {
    fcntl(listen_fd_, F_SETFL, flags | O_NONBLOCK);
  }
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) wake_[0] = wake_[1] = -1;
  thread_ = std::thread([this] { Run(); });
}

Acceptor::~Acceptor() {
  Stop();
  if (wake_[0] >= 0) close(wake_[0]);
  if (wake_[1] >= 0) close(wake_[1]);
}

void Acceptor::Stop() {
  if (stopped_.exchange(true)) return;
  if (wake_[1] >= 0) {
    char c = 1;
    (void)!write(wake_[1], &c, 1);
  }
  if (thread_.joinable()) thread_.join();
  if (owns_fd_) close(listen_fd_);
}

void Acceptor::Run() {
  bool short_of_resources = false;  // logged once for each spell
  while (!stopped_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    // The timeout only bounds how long a missing wake pipe could delay Stop.
    const int n = poll(fds, wake_[0] >= 0 ? 2 : 1, 500);
    if (n <= 0) continue;
    if (fds[1].revents != 0) break;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int conn = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (conn < 0) {
      const int err = errno;
      if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        deferred_accepts_.fetch_add(1);
        if (!short_of_resources) {
          LogMessage("warn", absl::StrCat("accept: ", strerror(err),
                                          "; new connections wait in the socket's queue"));
          short_of_resources = true;
        }
        // The connection stays queued and poll() would report it at once:
        // wait here, or until Stop, before trying again.
        pollfd wake{wake_[0], POLLIN, 0};
        if (poll(&wake, wake_[0] >= 0 ? 1 : 0, kRetryAcceptMs) > 0) break;
      }
      continue;
    }
    if (short_of_resources) {
      LogMessage("info", "accept: accepting again");
      short_of_resources = false;
    }
    grpc::AddInsecureChannelFromFd(server_, conn);
  }
}

absl::StatusOr<int> ListenUnix(const std::string& path) {
  sockaddr_un addr;
  if (!FillAddress(path, &addr)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path \"", path, "\" is too long"));
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Errno("socket() for", path);
  // Created 0660 from the start, not chmod-ed into it after a moment of
  // the process's own umask.
  const mode_t old_mask = umask(0117);
  const int bound = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  umask(old_mask);
  if (bound != 0 || listen(fd, SOMAXCONN) != 0) {
    if (bound != 0) errno = err;
    absl::Status s = Errno("cannot listen on", path);
    close(fd);
    return s;
  }
  return fd;
}

absl::StatusOr<Listener> StartServer(grpc::ServerBuilder& builder, const std::string& path,
                                     int activated_fd, absl::string_view what) {
  Listener l;
  int fd = activated_fd;
  if (activated_fd < 0) {
    if (absl::Status s = PrepareSocketPath(path); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
    }
    auto listening = ListenUnix(path);
    if (!listening.ok()) {
      return absl::Status(listening.status().code(),
                          absl::StrCat(what, ": ", listening.status().message()));
    }
    fd = *listening;
    l.path = path;
    if (absl::Status s = RestrictSocketMode(path); !s.ok()) {
      close(fd);
      return s;
    }
  }
  l.server = builder.BuildAndStart();
  if (l.server == nullptr) {
    if (activated_fd < 0) close(fd);
    return absl::UnavailableError(absl::StrCat(what, ": cannot start a gRPC server for ", path));
  }
  l.acceptor = std::make_unique<Acceptor>(fd, l.server.get(), /*owns_fd=*/activated_fd < 0);
  return l;
}

}  // namespace imgsel::plugin
