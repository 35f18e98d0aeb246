#include "plugin/upstream.h"

#include "absl/strings/match.h"
#include "absl/synchronization/notification.h"
#include "plugin/reactor_handover.h"

namespace imgsel::plugin {

void Cancellation::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  for (grpc::ClientContext* ctx : calls_) ctx->TryCancel();
}

bool Cancellation::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool Cancellation::Attach(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  calls_.insert(ctx);
  return true;
}

void Cancellation::Detach(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  calls_.erase(ctx);
}

bool ForwardableMetadataKey(absl::string_view key) {
  if (key.empty() || key[0] == ':') return false;
  if (absl::StartsWith(key, "grpc-")) return false;
  return key != "content-type" && key != "te" && key != "user-agent" && key != "host" &&
         key != "authority";
}

grpc::ByteBuffer ToByteBuffer(absl::string_view bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  out.reserve(buffer.Length());
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

Metadata CopyMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md) {
  Metadata out;
  out.reserve(md.size());
  for (const auto& [k, v] : md) {
    absl::string_view key(k.data(), k.size());
    if (!ForwardableMetadataKey(key)) continue;
    out.emplace_back(std::string(key), std::string(v.data(), v.size()));
  }
  return out;
}

std::shared_ptr<grpc::Channel> UnixChannel(const std::string& socket_path,
                                           ReconnectBackoff backoff) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxCriMessageBytes);
  args.SetMaxSendMessageSize(kMaxCriMessageBytes);
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS stays as it is: it is also how long
  // one connection attempt may take, and a busy containerd may take a while
  // to answer one.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, backoff.initial_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, backoff.max_ms);
  return grpc::CreateCustomChannel("unix:" + socket_path, grpc::InsecureChannelCredentials(), args);
}

UpstreamReply GrpcCriUpstream::Call(const std::string& method, absl::string_view request,
                                    const CallInfo& info, Cancellation* cancel) {
  UpstreamReply reply;
  grpc::ClientContext ctx;
  for (const auto& [k, v] : info.metadata) ctx.AddMetadata(k, v);
  if (info.deadline != absl::InfiniteFuture()) ctx.set_deadline(absl::ToChronoTime(info.deadline));
  if (cancel != nullptr && !cancel->Attach(&ctx)) {
    reply.status = grpc::Status(grpc::StatusCode::CANCELLED, "the caller cancelled the call");
    return reply;
  }
  grpc::ByteBuffer req = ToByteBuffer(request);
  grpc::ByteBuffer resp;
  absl::Notification done;
  // The callback runs on a thread of gRPC's client, after gRPC's own
  // (uninstrumented) handover: made visible to ThreadSanitizer, as a
  // reactor's is (reactor_handover.h). `done` orders the way back.
  ReactorHandover handover;
  handover.Release();
  stub_.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
    handover.Acquire();
    reply.status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  if (cancel != nullptr) cancel->Detach(&ctx);
  if (reply.status.ok()) reply.body = FromByteBuffer(resp);
  reply.initial_metadata = CopyMetadata(ctx.GetServerInitialMetadata());
  reply.trailing_metadata = CopyMetadata(ctx.GetServerTrailingMetadata());
  return reply;
}

}  // namespace imgsel::plugin
