// imgseld's listening sockets: Unix sockets it creates itself, or sockets
// systemd passes in (socket activation).
//
// A socket path imgseld creates:
//   - its directory is created (mode 0750) when missing;
//   - an existing socket nobody answers on (a previous imgseld that died)
//     is removed; one a live process accepts on is an error, so two daemons
//     never steal each other's socket; any other kind of file is an error;
//   - the socket is made mode 0660 (owner and group: kubelet runs as root,
//     API clients get access through the group).
//
// Socket activation (sd_listen_fds_with_names(3)): LISTEN_PID names this
// process, LISTEN_FDS counts descriptors from 3, LISTEN_FDNAMES names them
// (FileDescriptorName= in the .socket unit). A descriptor serves the
// Selector API when it is named "selector" and the CRI proxy when named
// "cri", wherever it is bound; one without either name (an older unit, or
// systemd-socket-activate without --fdname) is matched by its bound path to
// [server] socket / cri_socket instead. At most kMaxActivatedSockets are
// looked at.
//
// Either way imgseld accepts connections itself: an acceptor thread hands
// every accepted connection to the gRPC server. gRPC's own listener (1.51)
// stops listening for good the first time accept() fails with EMFILE; the
// acceptor waits and accepts again once descriptors are free.
//
// Thread-safe where noted.
#pragma once

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace imgsel::plugin {

// Makes `path` ready for a new listening socket (rules above).
absl::Status PrepareSocketPath(const std::string& path);

// A listening socket at `path` (made ready by PrepareSocketPath), created
// with mode 0660; non-blocking, close-on-exec.
absl::StatusOr<int> ListenUnix(const std::string& path);

// chmod 0660.
absl::Status RestrictSocketMode(const std::string& path);

inline constexpr int kMaxActivatedSockets = 64;

struct ActivatedSocket {
  int fd = -1;
  std::string name;  // FileDescriptorName=; empty when it has none
  std::string path;  // the bound Unix path, may be empty
};

// The descriptors systemd passed, or none. The LISTEN_* variables are
// removed from the environment so children do not inherit them.
std::vector<ActivatedSocket> TakeActivatedSockets();

// Picks the activated socket for a role ("selector" or "cri") configured at
// `path`: the one named `role`, else the one bound at `path`; -1 when none
// matches.
int FindActivatedSocket(const std::vector<ActivatedSocket>& sockets, const std::string& role,
                        const std::string& path);

// Accepts connections on a listening descriptor and hands each to a gRPC
// server. When the process is out of descriptors (EMFILE, ENFILE) or the
// kernel out of memory, the connection waits in the socket's queue and is
// tried again every kRetryAcceptMs (logged once at warn for each such spell).
// Stop() is thread-safe and idempotent; from then on nothing is accepted,
// and a descriptor the acceptor owns is closed (new connections are
// refused).
class Acceptor {
 public:
  static constexpr int kRetryAcceptMs = 50;

  // `owns_fd`: the descriptor is closed by Stop(); else it stays open (one
  // systemd passed in keeps its queue for the next imgseld).
  Acceptor(int listen_fd, grpc::Server* server, bool owns_fd = false);
  ~Acceptor();
  void Stop();
  // accept() calls that failed for want of descriptors or memory, so far.
  int64_t deferred_accepts() const { return deferred_accepts_.load(); }

 private:
  void Run();
  int listen_fd_;
  const bool owns_fd_;
  int wake_[2] = {-1, -1};
  grpc::Server* server_;
  std::atomic<bool> stopped_{false};
  std::atomic<int64_t> deferred_accepts_{0};
  std::thread thread_;
};

// A gRPC server and where it listens.
struct Listener {
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<Acceptor> acceptor;
  std::string path;  // created here: removed at exit
};

// Builds and starts `builder`'s server on `activated_fd` (socket
// activation), or, when that is -1, on a socket it creates at `path`
// (PrepareSocketPath's rules, mode 0660). `what` names the setting in
// errors ("[server] socket").
absl::StatusOr<Listener> StartServer(grpc::ServerBuilder& builder, const std::string& path,
                                     int activated_fd, absl::string_view what);

}  // namespace imgsel::plugin
