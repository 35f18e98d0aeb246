// The real things imgseld sits between, started for a test: Debian's
// containerd (CRI plugin on, native snapshotter, everything under a temp
// dir, a certs.d for the loopback registry), docker-registry on 127.0.0.1
// (tests/registry/real_registry.h), skopeo to push the example layout, and
// imgseld itself. Every process is started by PID, dies with the test
// binary (PR_SET_PDEATHSIG) and is stopped by PID; every wait is bounded.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/registry/real_registry.h"

namespace imgsel::integration {

// A child process; killed (TERM, then KILL after 5 s) when destroyed.
class Process {
 public:
  static absl::StatusOr<std::unique_ptr<Process>> Spawn(const std::vector<std::string>& argv,
                                                        const std::string& log_path);
  ~Process();
  pid_t pid() const { return pid_; }
  // Sends `sig`; then waits up to `wait` for the exit. Returns the exit
  // status as waitpid gives it, or -1 when it did not exit in time.
  int Signal(int sig, absl::Duration wait);
  bool Running();

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// Runs a command to completion within `timeout`; its output in *output.
absl::Status RunCommand(const std::vector<std::string>& argv, absl::Duration timeout,
                        std::string* output = nullptr);

class Containerd {
 public:
  // `certs_dir` is the certs.d tree containerd resolves registries with.
  // CRI has two runtime handlers, both runc: `runc` (the default) and
  // `runc-b`. `sandbox_image`: the pause image RunPodSandbox pulls (empty:
  // containerd's default, which needs the internet).
  // `socket`: where its gRPC socket goes (empty: dir/containerd.sock).
  static absl::StatusOr<std::unique_ptr<Containerd>> Start(const std::string& dir,
                                                           const std::string& certs_dir,
                                                           const std::string& sandbox_image = "",
                                                           const std::string& socket = "");
  // Sends `sig` and waits (bounded) for the exit; a SIGKILL leaves the
  // socket file behind, as a crash does.
  absl::Status Stop(int sig);
  // Starts it again with the same config, root and socket; returns once
  // its CRI plugin answers.
  absl::Status Restart();
  bool Running() const { return process_ != nullptr && process_->Running(); }
  const std::string& socket() const { return socket_; }
  const std::string& root() const { return root_; }
  // Every /imgsel-variant file in the native snapshotter's snapshots.
  std::vector<std::string> SnapshotVariants() const;
  // Number of blobs in the content store.
  int ContentBlobCount() const;

 private:
  absl::Status Launch();

  std::unique_ptr<Process> process_;
  std::string dir_;
  std::string config_;
  std::string socket_;
  std::string root_;
};

// Writes certs.d/<host>/hosts.toml sending `host` to `server` over plain HTTP.
absl::Status WriteHostsToml(const std::string& certs_dir, const std::string& host,
                            const std::string& server);

// Waits until a Unix socket path accepts connections.
bool WaitForSocket(const std::string& path, absl::Duration timeout);

int FreeLoopbackPort();

// Waits until the file at `path` contains `needle` (a log line a process
// writes when it reaches a state), instead of sleeping for a guessed time.
bool WaitForFileContaining(const std::string& path, const std::string& needle,
                           absl::Duration timeout);

// A whole file ("" when it cannot be read): logs and blobs for assertions.
std::string ReadFile(const std::string& path);

// Why the real components cannot run here (a binary of `binaries` missing,
// or not root), or "" when they can.
std::string MissingPrerequisite(const std::vector<std::string>& binaries);

}  // namespace imgsel::integration
