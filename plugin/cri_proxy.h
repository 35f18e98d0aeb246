// The CRI image-service proxy kubelet talks to (`[server] cri_socket`).
//
// containerd's socket serves every containerd API (namespaces, content,
// tasks, ...) beside CRI; the proxy serves the CRI image service and
// nothing else, which is all kubelet's image service endpoint sends:
//
//   method                             what happens
//   /runtime.v1.ImageService/*         PullImage: the PullHandler;
//                                      ImageStatus asked by a runtime
//                                      handler with rules of its own: the
//                                      HandlerImageStatus; the rest
//   /runtime.v1alpha2.ImageService/*   forwarded (v1alpha2: kubelets
//                                      before 1.26, containerd 1.6 and 1.7)
//   /grpc.health.v1.Health/Check       forwarded (containerd's health)
//   anything else                      UNIMPLEMENTED here; not a byte
//                                      reaches containerd
//
// A generic gRPC service: calls arrive as bytes. PullImage (both versions,
// same encoding) goes to the PullHandler on a worker thread; every other
// call served is forwarded to containerd's socket as the bytes received,
// with kubelet's metadata and deadline, and containerd's answer - message,
// status, initial and trailing metadata - comes back unchanged. A call
// kubelet cancels is cancelled upstream.
//
// At most `max_pulls` PullImage calls are handled with selection at once;
// more are forwarded as sent (counted as fallback "busy").
//
// Thread-safe; the proxy must outlive the grpc::Server it is registered on.
#pragma once

#include <grpcpp/generic/async_generic_service.h>

#include <atomic>
#include <memory>

#include "absl/strings/string_view.h"
#include "plugin/call_threads.h"
#include "plugin/handler_status.h"
#include "plugin/metrics.h"
#include "plugin/pull_handler.h"
#include "plugin/upstream.h"

namespace imgsel::plugin {

// True for the methods the table above serves (`method` is the call's
// path, "/runtime.v1.ImageService/PullImage").
bool CriProxyServes(absl::string_view method);

class CriProxy : public grpc::CallbackGenericService {
 public:
  CriProxy(GrpcCriUpstream* upstream, PullHandler* pulls, Metrics* metrics, int max_pulls);
  // Only once the server serving it has shut down (every call's OnDone has
  // run); waits for the pulls still running.
  ~CriProxy() override;

  // ImageStatus per runtime handler; null (the default): all forwarded.
  // Set before serving; `statuses` outlives the proxy. At most `max_pulls`
  // are answered at once, more are forwarded as sent.
  void SetHandlerImageStatus(HandlerImageStatus* statuses) { statuses_ = statuses; }

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

  int pulls_in_flight() const { return pulls_in_flight_.load(); }
  // Calls not finished yet, of any method.
  int calls_in_flight() const { return calls_in_flight_.load(); }

 private:
  class Call;
  void Refuse(const std::string& method);
  GrpcCriUpstream* upstream_;
  PullHandler* pulls_;
  Metrics* metrics_;
  HandlerImageStatus* statuses_ = nullptr;
  const int max_pulls_;
  std::atomic<int> pulls_in_flight_{0};
  std::atomic<int> statuses_in_flight_{0};
  std::atomic<int> calls_in_flight_{0};
  std::atomic<bool> refusal_logged_{false};
  // Pulls run here, off gRPC's callback threads; joined when the proxy goes
  // (last member: the others outlive them).
  CallThreads pull_threads_;
};

}  // namespace imgsel::plugin
