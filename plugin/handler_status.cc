#include "plugin/handler_status.h"

#include "absl/time/clock.h"
#include "cri/runtime/v1/api.pb.h"
#include "plugin/pull_request.h"
#include "registry/reference.h"

namespace imgsel::plugin {
namespace {

// What the question is, when it is one for a handler's own record.
struct HandlerQuestion {
  std::string handler;
  registry::Reference ref;
};

std::optional<HandlerQuestion> ReadQuestion(absl::string_view request,
                                            const std::set<std::string>& with_rules) {
  runtime::v1::ImageStatusRequest req;
  if (with_rules.empty() || !req.ParseFromArray(request.data(), static_cast<int>(request.size()))) {
    return std::nullopt;
  }
  const std::string& handler = req.image().runtime_handler();
  if (handler.empty() || with_rules.count(handler) == 0) return std::nullopt;
  // An image id (sha256:<config>) names one image whoever asks.
  auto ref = registry::ParseReference(req.image().image());
  if (!ref.ok() || req.image().image().rfind("sha256:", 0) == 0) return std::nullopt;
  return HandlerQuestion{handler, *std::move(ref)};
}

// The bound on the record lookup: a local call.
constexpr absl::Duration kRecordLookup = absl::Seconds(2);

}  // namespace

HandlerImageStatus::HandlerImageStatus(CriUpstream* upstream, ImageRecordWriter* records,
                                       const PullHandler* pulls)
    : upstream_(upstream), records_(records), pulls_(pulls) {}

bool HandlerImageStatus::Wants(absl::string_view request) const {
  return ReadQuestion(request, pulls_->settings().handlers_with_rules).has_value();
}

std::optional<UpstreamReply> HandlerImageStatus::Answer(const std::string& method,
                                                        const std::string& request,
                                                        const CallInfo& info,
                                                        Cancellation* cancel) {
  std::optional<HandlerQuestion> q = ReadQuestion(request, pulls_->settings().handlers_with_rules);
  if (!q) return std::nullopt;
  const std::string own = HandlerRecordName(q->ref.Name(), q->ref.tag, q->ref.digest, q->handler);
  auto rewritten = ReplacePullImageName(request, own);
  if (!rewritten.ok()) return std::nullopt;
  UpstreamReply reply = upstream_->Call(method, *rewritten, info, cancel);
  if (!reply.status.ok()) return std::nullopt;
  runtime::v1::ImageStatusResponse resp;
  if (!resp.ParseFromString(reply.body)) return std::nullopt;
  if (resp.has_image()) return reply;
  // No record of this handler's own: is "repo:tag" another handler's choice?
  absl::Time deadline = std::min(info.deadline, absl::Now() + kRecordLookup);
  auto tag_record = records_->Get(CriImageName(q->ref.Name(), q->ref.tag, q->ref.digest), deadline);
  if (!tag_record.ok() || tag_record->labels.count(kSelectedByLabel) == 0) return std::nullopt;
  UpstreamReply absent;
  absent.body = runtime::v1::ImageStatusResponse().SerializeAsString();
  return absent;
}

}  // namespace imgsel::plugin
