// Calls to containerd's CRI image service, as opaque bytes.
//
// imgseld never re-encodes what kubelet sent: a request goes upstream as the
// bytes received (or, for a selected PullImage, with only the image name
// replaced), with kubelet's metadata and deadline; containerd's answer,
// status and metadata come back the same way.
//
// Cancellation lets a call in progress be abandoned when kubelet gives up.
// Everything here is thread-safe.
#pragma once

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imgsel::plugin {

using Metadata = std::vector<std::pair<std::string, std::string>>;

struct UpstreamReply {
  grpc::Status status;
  std::string body;  // the encoded response message (status OK only)
  Metadata initial_metadata;
  Metadata trailing_metadata;
};

// The caller's side of a call: metadata to pass on and the deadline.
struct CallInfo {
  Metadata metadata;
  absl::Time deadline = absl::InfiniteFuture();
};

// Cancels the upstream calls made on its behalf: the one in progress and
// every later one.
class Cancellation {
 public:
  void Cancel();
  bool cancelled() const;

  // For upstream implementations: false when already cancelled.
  bool Attach(grpc::ClientContext* ctx);
  void Detach(grpc::ClientContext* ctx);

 private:
  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_set<grpc::ClientContext*> calls_ ABSL_GUARDED_BY(mu_);
};

// Metadata from a client that may be passed on to another server: gRPC's own
// headers (":path", "grpc-timeout", "content-type", "te", "user-agent", ...)
// are left for the transport to set.
bool ForwardableMetadataKey(absl::string_view key);

class CriUpstream {
 public:
  virtual ~CriUpstream() = default;
  // A blocking unary call of `method` ("/runtime.v1.ImageService/PullImage").
  virtual UpstreamReply Call(const std::string& method, absl::string_view request,
                             const CallInfo& info, Cancellation* cancel) = 0;
};

// The real one: a channel to containerd's socket.
class GrpcCriUpstream : public CriUpstream {
 public:
  explicit GrpcCriUpstream(std::shared_ptr<grpc::Channel> channel)
      : channel_(channel), stub_(std::move(channel)) {}

  UpstreamReply Call(const std::string& method, absl::string_view request, const CallInfo& info,
                     Cancellation* cancel) override;

  grpc::GenericStub& stub() { return stub_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  grpc::GenericStub stub_;
};

// How a channel retries a socket whose server is gone: the first wait,
// growing (gRPC's x1.6, jittered) up to `max_ms`. A local socket is either
// there or not, so imgseld caps the wait at a second: it reconnects within
// a second of containerd coming back, not after gRPC's default backoff,
// which grows to two minutes while containerd is down. Tests pass smaller
// figures to see the cap at work in seconds rather than a minute.
struct ReconnectBackoff {
  int initial_ms = 100;
  int max_ms = 1000;
};

// A channel to a Unix socket path with imgseld's message limits.
std::shared_ptr<grpc::Channel> UnixChannel(const std::string& socket_path,
                                           ReconnectBackoff backoff = {});

// The largest message accepted in either direction on the CRI path
// (containerd's own default).
inline constexpr int kMaxCriMessageBytes = 16 << 20;

// Byte buffers <-> strings.
grpc::ByteBuffer ToByteBuffer(absl::string_view bytes);
std::string FromByteBuffer(const grpc::ByteBuffer& buffer);

// Copies a multimap of metadata (as grpc hands it out) into owned strings.
Metadata CopyMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md);

}  // namespace imgsel::plugin
