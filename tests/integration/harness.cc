#include "tests/integration/harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
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

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "cri/runtime/v1/api.grpc.pb.h"
#include "plugin/upstream.h"

namespace imgsel::integration {
namespace {

pid_t ForkExec(const std::vector<std::string>& argv, int out_fd) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (out_fd >= 0) {
      dup2(out_fd, 1);
      dup2(out_fd, 2);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string MissingPrerequisite(const std::vector<std::string>& binaries) {
  for (const std::string& bin : binaries) {
    if (access(bin.c_str(), X_OK) != 0) return absl::StrCat(bin, " not installed");
  }
  if (geteuid() != 0) return "containerd needs root";
  return "";
}

absl::StatusOr<std::unique_ptr<Process>> Process::Spawn(const std::vector<std::string>& argv,
                                                        const std::string& log_path) {
  int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", log_path));
  std::unique_ptr<Process> p(new Process());
  p->pid_ = ForkExec(argv, fd);
  close(fd);
  if (p->pid_ < 0) return absl::InternalError("fork failed");
  return p;
}

bool Process::Running() {
  if (reaped_) return false;
  int status;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

int Process::Signal(int sig, absl::Duration wait) {
  if (reaped_) return 0;
  kill(pid_, sig);
  const absl::Time deadline = absl::Now() + wait;
  while (absl::Now() < deadline) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      reaped_ = true;
      return status;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return -1;
}

Process::~Process() {
  if (reaped_ || pid_ <= 0) return;
  if (Signal(SIGTERM, absl::Seconds(5)) == -1) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

absl::Status RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                        std::string* output) {
  char tmpl[] = "/tmp/imgsel-cmd-XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) return absl::InternalError("mkstemp");
  pid_t pid = ForkExec(argv, fd);
  close(fd);
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  bool exited = false;
  while (absl::Now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  std::ifstream in(tmpl);
  std::stringstream ss;
  ss << in.rdbuf();
  unlink(tmpl);
  if (output != nullptr) *output = ss.str();
  if (!exited) {
    return absl::DeadlineExceededError(absl::StrCat(argv[0], " timed out: ", ss.str()));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat(absl::StrJoin(argv, " "), " failed: ", ss.str()));
  }
  return absl::OkStatus();
}

bool WaitForSocket(const std::string& path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  while (absl::Now() < deadline) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (ok) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

bool WaitForFileContaining(const std::string& path, const std::string& needle,
                           absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (ReadFile(path).find(needle) != std::string::npos) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

absl::Status WriteHostsToml(const std::string& certs_dir, const std::string& host,
                            const std::string& server) {
  std::error_code ec;
  std::filesystem::create_directories(absl::StrCat(certs_dir, "/", host), ec);
  if (ec) return absl::InternalError(ec.message());
  std::ofstream(absl::StrCat(certs_dir, "/", host, "/hosts.toml"))
      << "server = \"http://" << server << "\"\n\n[host.\"http://" << server
      << "\"]\n  capabilities = [\"pull\", \"resolve\"]\n";
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Containerd>> Containerd::Start(const std::string& dir,
                                                              const std::string& certs_dir,
                                                              const std::string& sandbox_image,
                                                              const std::string& socket) {
  if (access("/usr/bin/containerd", X_OK) != 0) {
    return absl::FailedPreconditionError("containerd not installed (apt-get install containerd)");
  }
  std::unique_ptr<Containerd> c(new Containerd());
  c->dir_ = dir;
  c->root_ = dir + "/root";
  c->socket_ = socket.empty() ? dir + "/containerd.sock" : socket;
  c->config_ = dir + "/containerd.toml";
  const std::string& config = c->config_;
  std::ofstream(config)
      << "version = 2\n"
      << "root = \"" << c->root_ << "\"\n"
      << "state = \"" << dir << "/state\"\n"
      << "disabled_plugins = [\"io.containerd.snapshotter.v1.btrfs\", "
         "\"io.containerd.snapshotter.v1.zfs\", \"io.containerd.snapshotter.v1.aufs\", "
         "\"io.containerd.snapshotter.v1.devmapper\", \"io.containerd.internal.v1.opt\"]\n"
      << "[grpc]\n  address = \"" << c->socket_ << "\"\n"
      << "[ttrpc]\n  address = \"" << c->socket_ << ".ttrpc\"\n"
      << "[debug]\n  address = \"" << dir << "/debug.sock\"\n  level = \"info\"\n"
      << "[plugins.\"io.containerd.grpc.v1.cri\"]\n"
      << "  disable_tcp_service = true\n"
      << "  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n"
      << "  enable_selinux = false\n"
      // CRI gives the pause container oom_score_adj -998, and lowering a
      // score takes CAP_SYS_RESOURCE, which root's bounding set lacks on
      // some build machines (runc then fails in nsexec: "failed to update
      // /proc/self/oom_score_adj: Permission denied"). Clamped to
      // containerd's own score, which no test depends on.
      << "  restrict_oom_score_adj = true\n"
      << (sandbox_image.empty() ? "" : "  sandbox_image = \"" + sandbox_image + "\"\n")
      << "  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n"
      << "    snapshotter = \"native\"\n"
      << "    default_runtime_name = \"runc\"\n"
      << "    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n"
      << "      runtime_type = \"io.containerd.runc.v2\"\n"
      << "    [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc-b]\n"
      << "      runtime_type = \"io.containerd.runc.v2\"\n"
      << "  [plugins.\"io.containerd.grpc.v1.cri\".cni]\n"
      << "    bin_dir = \"" << dir << "/cni/bin\"\n    conf_dir = \"" << dir << "/cni/conf\"\n"
      << "  [plugins.\"io.containerd.grpc.v1.cri\".registry]\n"
      << "    config_path = \"" << certs_dir << "\"\n";
  if (absl::Status s = c->Launch(); !s.ok()) return s;
  return c;
}

absl::Status Containerd::Launch() {
  auto p = Process::Spawn({"/usr/bin/containerd", "--config", config_}, dir_ + "/containerd.log");
  if (!p.ok()) return p.status();
  process_ = *std::move(p);
  if (!WaitForSocket(socket_, absl::Seconds(20))) {
    return absl::UnavailableError(
        absl::StrCat("containerd did not come up; see ", dir_, "/containerd.log"));
  }
  // The CRI plugin initialises after the socket appears: wait for it to answer.
  auto stub = runtime::v1::ImageService::NewStub(plugin::UnixChannel(socket_));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    runtime::v1::ListImagesRequest req;
    runtime::v1::ListImagesResponse resp;
    if (stub->ListImages(&ctx, req, &resp).ok()) return absl::OkStatus();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::UnavailableError(
      absl::StrCat("containerd's CRI plugin did not answer; see ", dir_, "/containerd.log"));
}

absl::Status Containerd::Stop(int sig) {
  if (process_ == nullptr) return absl::OkStatus();
  if (process_->Signal(sig, absl::Seconds(15)) == -1) {
    return absl::DeadlineExceededError(absl::StrCat("containerd did not exit on signal ", sig));
  }
  process_.reset();
  return absl::OkStatus();
}

absl::Status Containerd::Restart() {
  if (absl::Status s = Stop(SIGTERM); !s.ok()) return s;
  return Launch();
}

std::vector<std::string> Containerd::SnapshotVariants() const {
  std::vector<std::string> out;
  const std::string dir = root_ + "/io.containerd.snapshotter.v1.native/snapshots";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::ifstream in(entry.path() / "imgsel-variant");
    std::string line;
    if (in && std::getline(in, line)) out.push_back(line);
  }
  return out;
}

int Containerd::ContentBlobCount() const {
  int n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(
           root_ + "/io.containerd.content.v1.content/blobs/sha256", ec)) {
    (void)entry;
    ++n;
  }
  return n;
}

}  // namespace imgsel::integration
