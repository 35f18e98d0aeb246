#include "plugin/cri_proxy.h"

#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "plugin/decision_log.h"
#include "plugin/pull_request.h"
#include "plugin/reactor_handover.h"

namespace imgsel::plugin {

bool CriProxyServes(absl::string_view method) {
  if (method == "/grpc.health.v1.Health/Check") return true;
  for (absl::string_view service :
       {"/runtime.v1.ImageService/", "/runtime.v1alpha2.ImageService/"}) {
    if (absl::StartsWith(method, service)) {
      absl::string_view name = method.substr(service.size());
      return !name.empty() && !absl::StrContains(name, '/');
    }
  }
  return false;
}

// One proxied call: read the request, answer it (forwarded or through the
// PullHandler), finish. Deleted by the last of gRPC (OnDone) and the threads
// that answer it (a pull worker, the forwarded call's callback) to be done
// with it (reactor_handover.h).
class CriProxy::Call : public grpc::ServerGenericBidiReactor {
 public:
  Call(CriProxy* proxy, grpc::GenericCallbackServerContext* ctx)
      : proxy_(proxy), ctx_(ctx), start_(absl::Now()) {
    if (!CriProxyServes(ctx_->method())) {
      proxy_->Refuse(ctx_->method());
      Finish(
          grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                       absl::StrCat(ctx_->method(),
                                    ": imgseld's CRI socket serves the CRI image service only")));
    } else {
      StartRead(&request_);
    }
    handover_.Release();
  }

  void OnReadDone(bool ok) override {
    ReactorHandover::Reaction reaction(handover_);
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    const std::string& method = ctx_->method();
    const CriMethod kind = CriMethodFromPath(method);
    CallInfo info;
    info.metadata = CopyMetadata(ctx_->client_metadata());
    const auto deadline = ctx_->deadline();
    if (deadline != std::chrono::system_clock::time_point::max()) {
      info.deadline = absl::FromChrono(deadline);
    }
    if (kind == CriMethod::kPullImage) {
      if (proxy_->pulls_in_flight_.fetch_add(1) < proxy_->max_pulls_) {
        handover_.Hold();
        proxy_->pull_threads_.Run([this, method, info = std::move(info)] {
          handover_.Acquire();
          UpstreamReply reply =
              proxy_->pulls_->Pull(method, FromByteBuffer(request_), info, &cancel_);
          proxy_->pulls_in_flight_.fetch_sub(1);
          Reply(std::move(reply));
          if (handover_.Drop()) delete this;
        });
        return;
      }
      proxy_->pulls_in_flight_.fetch_sub(1);
      proxy_->metrics_->CountPull(PullOutcome::kFallback);
      proxy_->metrics_->CountFallback(FallbackReason::kBusy);
      // Forwarded as sent; its line is written when containerd has answered.
      busy_line_ = std::make_unique<DecisionLine>();
      busy_line_->outcome = std::string(PullOutcomeName(PullOutcome::kFallback));
      busy_line_->reason = std::string(FallbackReasonName(FallbackReason::kBusy));
      busy_line_->detail =
          absl::StrCat(proxy_->max_pulls_, " pulls already being handled (--max-pulls)");
      if (auto fields = ReadPullImageRequest(FromByteBuffer(request_)); fields.ok()) {
        busy_line_->image = fields->image;
        busy_line_->handler = fields->runtime_handler;
      }
    }
    if (kind == CriMethod::kImageStatus && proxy_->statuses_ != nullptr &&
        absl::StartsWith(method, "/runtime.v1.") && AnswerForHandler(method, kind, info)) {
      return;
    }
    Forward(method, kind, info);
  }

  void OnWriteDone(bool) override {}
  void OnCancel() override {
    ReactorHandover::Reaction reaction(handover_);
    cancel_.Cancel();
    upstream_ctx_.TryCancel();
  }
  void OnDone() override {
    handover_.Acquire();  // before the proxy's count says the call is over
    proxy_->calls_in_flight_.fetch_sub(1);
    if (handover_.Drop()) delete this;
  }

 private:
  void Forward(const std::string& method, CriMethod kind, const CallInfo& info) {
    for (const auto& [k, v] : info.metadata) upstream_ctx_.AddMetadata(k, v);
    if (info.deadline != absl::InfiniteFuture()) {
      upstream_ctx_.set_deadline(absl::ToChronoTime(info.deadline));
    }
    // The callback runs on a thread of gRPC's client and answers the call.
    handover_.Hold();
    proxy_->upstream_->stub().UnaryCall(
        &upstream_ctx_, method, grpc::StubOptions(), &request_, &response_,
        [this, kind](grpc::Status status) {
          handover_.Acquire();
          proxy_->metrics_->CountPassthrough(kind, !status.ok());
          if (busy_line_ != nullptr) {
            busy_line_->code = StatusCodeName(static_cast<int>(status.error_code()));
            busy_line_->total_time = absl::Now() - start_;
            LogLine(FormatDecisionLine(*busy_line_, absl::Now()));
          }
          UpstreamReply reply;
          reply.status = std::move(status);
          reply.initial_metadata = CopyMetadata(upstream_ctx_.GetServerInitialMetadata());
          reply.trailing_metadata = CopyMetadata(upstream_ctx_.GetServerTrailingMetadata());
          for (const auto& [k, v] : reply.initial_metadata) ctx_->AddInitialMetadata(k, v);
          for (const auto& [k, v] : reply.trailing_metadata) ctx_->AddTrailingMetadata(k, v);
          handover_.Release();  // OnDone may run before the call below returns
          if (reply.status.ok()) {
            StartWriteAndFinish(&response_, grpc::WriteOptions(), reply.status);
          } else {
            Finish(reply.status);
          }
          if (handover_.Drop()) delete this;
        });
  }

  // True when the HandlerImageStatus takes the call (on a worker thread).
  bool AnswerForHandler(const std::string& method, CriMethod kind, const CallInfo& info) {
    std::string request = FromByteBuffer(request_);
    if (!proxy_->statuses_->Wants(request)) return false;
    if (proxy_->statuses_in_flight_.fetch_add(1) >= proxy_->max_pulls_) {
      proxy_->statuses_in_flight_.fetch_sub(1);
      return false;
    }
    handover_.Hold();
    proxy_->pull_threads_.Run([this, method, kind, info, request = std::move(request)] {
      handover_.Acquire();
      std::optional<UpstreamReply> answer =
          proxy_->statuses_->Answer(method, request, info, &cancel_);
      proxy_->statuses_in_flight_.fetch_sub(1);
      if (!answer) {
        Forward(method, kind, info);
      } else {
        proxy_->metrics_->CountPassthrough(kind, !answer->status.ok());
        Reply(*std::move(answer));
      }
      if (handover_.Drop()) delete this;
    });
    return true;
  }

  void Reply(UpstreamReply reply) {
    for (const auto& [k, v] : reply.initial_metadata) ctx_->AddInitialMetadata(k, v);
    for (const auto& [k, v] : reply.trailing_metadata) ctx_->AddTrailingMetadata(k, v);
    if (reply.status.ok()) response_ = ToByteBuffer(reply.body);
    handover_.Release();  // OnDone may run before the call below returns
    if (reply.status.ok()) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), reply.status);
    } else {
      Finish(reply.status);
    }
  }

  CriProxy* proxy_;
  grpc::GenericCallbackServerContext* ctx_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  grpc::ClientContext upstream_ctx_;
  Cancellation cancel_;
  const absl::Time start_;
  // A PullImage forwarded as sent because --max-pulls were running.
  std::unique_ptr<DecisionLine> busy_line_;
  ReactorHandover handover_;
};

CriProxy::CriProxy(GrpcCriUpstream* upstream, PullHandler* pulls, Metrics* metrics, int max_pulls)
    : upstream_(upstream), pulls_(pulls), metrics_(metrics), max_pulls_(max_pulls) {}

CriProxy::~CriProxy() {
  // Every call's OnDone counted itself out, after all its reactions, before
  // the server's Shutdown returned; gRPC waits for that through atomics of
  // its own. This load makes the same order visible to ThreadSanitizer.
  (void)calls_in_flight_.load(std::memory_order_acquire);
}

void CriProxy::Refuse(const std::string& method) {
  // Once: a client that keeps calling must not flood the journal.
  if (refusal_logged_.exchange(true)) return;
  LogMessage("warn", absl::StrCat("CRI socket: ", method,
                                  " refused (UNIMPLEMENTED): only the CRI image service is served "
                                  "here; is a runtime endpoint pointed at imgseld?"));
}

grpc::ServerGenericBidiReactor* CriProxy::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  calls_in_flight_.fetch_add(1);
  return new Call(this, ctx);
}

}  // namespace imgsel::plugin
