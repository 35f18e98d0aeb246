// Which runtime handler a pull is for.
//
// kubelet puts the pod's RuntimeClass handler in ImageSpec.runtime_handler
// only behind its RuntimeClassInImageCriApi feature gate (alpha, off by
// default). Every PullImage carries the pod's sandbox config, though, and
// kubelet creates the pod's sandbox (RunPodSandbox, with the handler) before
// it pulls the pod's images (kuberuntime_manager.go SyncPod: step 4 creates
// the sandbox, the steps after it start containers, each through
// EnsureImageExists with that sandbox config). So the handler of a pull is,
// in this order:
//
//   source        where from
//   "image_spec"  ImageSpec.runtime_handler, when kubelet set it
//   "sandbox"     the READY sandbox of the pulling pod, asked of
//                 containerd's CRI RuntimeService: ListPodSandbox filtered by
//                 the pod's label io.kubernetes.pod.uid (kubelet sets it on
//                 every sandbox) and READY, then the one whose metadata is
//                 the request's name, namespace, uid and attempt
//   "default"     the empty handler: no sandbox config (crictl pull), no
//                 such sandbox, or the lookup failed (`error` says why)
//
// The lookup is one local call bounded by its deadline; it never fails a
// pull: an error means the default handler, and the caller logs it.
//
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace imgsel::plugin {

// kubelet's label on every sandbox it creates (and on its containers).
inline constexpr char kPodUidLabel[] = "io.kubernetes.pod.uid";

// PodSandboxMetadata: what identifies a pod's sandbox.
struct PodIdentity {
  std::string name;
  std::string uid;
  std::string ns;
  uint32_t attempt = 0;
};

class SandboxHandlers {
 public:
  virtual ~SandboxHandlers() = default;
  // The runtime handler of `pod`'s READY sandbox ("" when it runs under
  // containerd's default runtime). NotFound when there is no such sandbox;
  // other errors from containerd as they come.
  virtual absl::StatusOr<std::string> HandlerOf(const PodIdentity& pod, absl::Time deadline) = 0;
};

// The real one: containerd's CRI RuntimeService on its socket.
class CriSandboxHandlers : public SandboxHandlers {
 public:
  explicit CriSandboxHandlers(std::shared_ptr<grpc::Channel> channel);
  ~CriSandboxHandlers() override;
  absl::StatusOr<std::string> HandlerOf(const PodIdentity& pod, absl::Time deadline) override;

 private:
  struct Stub;
  std::unique_ptr<Stub> stub_;
};

struct PullRuntimeHandler {
  std::string name;    // "" is containerd's default runtime
  std::string source;  // "image_spec", "sandbox" or "default"
  std::string error;   // why the sandbox lookup gave nothing, when it failed
};

// The table above. `lookup` may be null (no lookup: "default").
PullRuntimeHandler ResolvePullRuntimeHandler(const std::string& image_spec_handler,
                                             const PodIdentity& pod, SandboxHandlers* lookup,
                                             absl::Time deadline);

}  // namespace imgsel::plugin
