#include "plugin/sandbox_handlers.h"

#include "absl/strings/str_cat.h"
#include "cri/runtime/v1/api.grpc.pb.h"

namespace imgsel::plugin {

struct CriSandboxHandlers::Stub {
  std::unique_ptr<runtime::v1::RuntimeService::Stub> runtime;
};

CriSandboxHandlers::CriSandboxHandlers(std::shared_ptr<grpc::Channel> channel)
    : stub_(new Stub{runtime::v1::RuntimeService::NewStub(std::move(channel))}) {}

CriSandboxHandlers::~CriSandboxHandlers() = default;

absl::StatusOr<std::string> CriSandboxHandlers::HandlerOf(const PodIdentity& pod,
                                                          absl::Time deadline) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(deadline));
  runtime::v1::ListPodSandboxRequest req;
  runtime::v1::PodSandboxFilter* filter = req.mutable_filter();
  filter->mutable_state()->set_state(runtime::v1::SANDBOX_READY);
  (*filter->mutable_label_selector())[kPodUidLabel] = pod.uid;
  runtime::v1::ListPodSandboxResponse resp;
  grpc::Status s = stub_->runtime->ListPodSandbox(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        absl::StrCat("containerd ListPodSandbox: ", s.error_message()));
  }
  // A pod has one READY sandbox at a time; a restarted one (attempt + 1)
  // replaces the last. Of several that still match, the newest.
  const runtime::v1::PodSandbox* found = nullptr;
  for (const runtime::v1::PodSandbox& sb : resp.items()) {
    const runtime::v1::PodSandboxMetadata& m = sb.metadata();
    if (sb.state() != runtime::v1::SANDBOX_READY || m.uid() != pod.uid || m.name() != pod.name ||
        m.namespace_() != pod.ns || m.attempt() != pod.attempt) {
      continue;
    }
    if (found == nullptr || sb.created_at() > found->created_at()) found = &sb;
  }
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat("no READY sandbox of pod ", pod.ns, "/", pod.name,
                                            " (uid ", pod.uid, ", attempt ", pod.attempt, ")"));
  }
  return found->runtime_handler();
}

PullRuntimeHandler ResolvePullRuntimeHandler(const std::string& image_spec_handler,
                                             const PodIdentity& pod, SandboxHandlers* lookup,
                                             absl::Time deadline) {
  PullRuntimeHandler out;
  if (!image_spec_handler.empty()) {
    out.name = image_spec_handler;
    out.source = "image_spec";
    return out;
  }
  out.source = "default";
  // Without a uid there is nothing to find the sandbox by (a pull from
  // crictl or ctr has no sandbox config).
  if (lookup == nullptr || pod.uid.empty()) return out;
  absl::StatusOr<std::string> found = lookup->HandlerOf(pod, deadline);
  if (!found.ok()) {
    out.error = std::string(found.status().message());
    return out;
  }
  out.name = *found;
  out.source = "sandbox";
  return out;
}

}  // namespace imgsel::plugin
