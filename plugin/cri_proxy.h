// The CRI image-service proxy kubelet talks to (`[server] cri_socket`).
//
// A generic gRPC service: every method of every CRI version arrives as
// bytes. PullImage (runtime.v1 and v1alpha2, same encoding) goes to the
// PullHandler on a worker thread; every other call is forwarded to
// containerd's socket as the bytes received, with kubelet's metadata and
// deadline, and containerd's answer - message, status, initial and
// trailing metadata - comes back unchanged. A call kubelet cancels is
// cancelled upstream.
//
// At most `max_pulls` PullImage calls are handled with selection at once;
// more are forwarded as sent (counted as fallback "busy").
//
// Thread-safe; the proxy must outlive the grpc::Server it is registered on.
#pragma once

#include <grpcpp/generic/async_generic_service.h>

#include <atomic>
#include <memory>

#include "plugin/metrics.h"
#include "plugin/pull_handler.h"
#include "plugin/upstream.h"

namespace imgsel::plugin {

class CriProxy : public grpc::CallbackGenericService {
 public:
  CriProxy(GrpcCriUpstream* upstream, PullHandler* pulls, Metrics* metrics, int max_pulls);

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

  int pulls_in_flight() const { return pulls_in_flight_.load(); }
  // Calls not finished yet, of any method.
  int calls_in_flight() const { return calls_in_flight_.load(); }

 private:
  class Call;
  GrpcCriUpstream* upstream_;
  PullHandler* pulls_;
  Metrics* metrics_;
  const int max_pulls_;
  std::atomic<int> pulls_in_flight_{0};
  std::atomic<int> calls_in_flight_{0};
};

}  // namespace imgsel::plugin
