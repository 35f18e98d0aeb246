#include "plugin/pull_handler.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "cri/runtime/v1/api.pb.h"
#include "matcher/platform.h"
#include "oci/digest.h"
#include "oci/utf8.h"
#include "plugin/pull_request.h"
#include "plugin/select_within.h"
#include "registry/reference.h"
#include "selector/selection_stage.h"

namespace imgsel::plugin {
namespace {

// Why nothing in an index runs here, briefly: the host, then each entry's
// first reason for rejection (at most 8 entries, 1 KiB in all, one line).
std::string NothingFitsMessage(absl::string_view image, const Decision& d) {
  std::string out =
      absl::StrCat("imgsel: no entry of ", image, " runs on this host (", d.host_platform, ")");
  size_t listed = 0;
  for (const Candidate& c : d.candidates) {
    if (listed == 8 || out.size() > 1024) {
      absl::StrAppend(&out, "; ...");
      break;
    }
    std::string first;
    ForEachReason(d, c, [&](absl::string_view r) {
      if (first.empty() && absl::StartsWith(r, "rejected: ")) first = std::string(r.substr(10));
    });
    if (first.empty()) continue;
    absl::StrAppend(&out, listed == 0 ? ": " : "; ", "manifests[", c.position, "] ", first);
    ++listed;
  }
  return std::string(ToValidUtf8(out.substr(0, 1200)));
}

std::string SiblingMethod(const std::string& method, absl::string_view name) {
  const size_t slash = method.rfind('/');
  return absl::StrCat(method.substr(0, slash + 1), name);
}

}  // namespace

struct PullHandler::Outcome {
  DecisionLine line;
  PullOutcome outcome = PullOutcome::kFallback;
};

std::string CriImageName(const std::string& repository, const std::string& tag,
                         const std::string& digest) {
  if (!digest.empty()) return absl::StrCat(repository, "@", digest);
  return absl::StrCat(repository, ":", tag.empty() ? "latest" : tag);
}

std::string HandlerRecordName(const std::string& repository, const std::string& tag,
                              const std::string& digest, const std::string& handler) {
  constexpr size_t kMaxTag = 128;  // the distribution spec's tag grammar
  std::string base = tag.empty() ? "latest" : tag;
  if (!digest.empty()) base = absl::StrReplaceAll(digest, {{":", "-"}});
  std::string named = absl::StrCat(base, ".imgsel.", handler);
  const bool plain =
      !handler.empty() && handler.find_first_not_of(
                              "abcdefghijklmnopqrstuvwxyz"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == std::string::npos;
  if (!plain || named.size() > kMaxTag) {
    const std::string hashed = Sha256Digest(absl::StrCat(base, "\n", handler));
    named = absl::StrCat("imgsel-", hashed.substr(7, 32));
  }
  return absl::StrCat(repository, ":", named);
}

FallbackReason ClassifySelectError(const absl::Status& status) {
  if (const std::optional<SelectionStage> stage = StageOf(status)) {
    switch (*stage) {
      case SelectionStage::kResolve:
        return FallbackReason::kResolve;
      case SelectionStage::kBudget:
        return FallbackReason::kTimeout;
      case SelectionStage::kIndex:
        return FallbackReason::kIndex;
      case SelectionStage::kMemory:
        return FallbackReason::kBusy;
      case SelectionStage::kRequest:
        return FallbackReason::kRequest;
    }
  }
  // Not the pipeline's own failure: by its code.
  switch (status.code()) {
    case absl::StatusCode::kDeadlineExceeded:
      return FallbackReason::kTimeout;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kDataLoss:
      return FallbackReason::kIndex;
    default:
      return FallbackReason::kResolve;
  }
}

PullHandler::PullHandler(SelectFn select, CriUpstream* upstream, ImageRecordWriter* records,
                         Metrics* metrics, LineSink sink)
    : select_(std::move(select)),
      upstream_(upstream),
      records_(records),
      metrics_(metrics),
      sink_(std::move(sink)) {}

void PullHandler::SetSettings(const PullSettings& settings) {
  absl::MutexLock lock(&mu_);
  settings_ = settings;
}

PullSettings PullHandler::settings() const {
  absl::MutexLock lock(&mu_);
  return settings_;
}

UpstreamReply PullHandler::ForwardAsSent(const std::string& method, const std::string& request,
                                         const CallInfo& info, Cancellation* cancel) {
  return upstream_->Call(method, request, info, cancel);
}

absl::StatusOr<Selection> PullHandler::SelectWithin(const SelectionRequest& request,
                                                    absl::string_view registry,
                                                    absl::Duration budget, bool* busy) {
  *busy = false;
  const int limit = settings().max_selections;
  std::optional<SelectionSlot> slot = SelectionSlot::Take(places_, limit, registry);
  if (!slot) {
    *busy = true;
    return absl::ResourceExhaustedError(
        absl::StrCat(limit, " selections already running, or this registry's share of them (",
                     std::max(1, limit / 4), "); forwarding as sent"));
  }
  SelectionRequest bounded = request;
  bounded.budget = budget;
  return plugin::SelectWithin(select_, bounded, budget, *std::move(slot));
}

void PullHandler::WaitForCriCache(const std::string& method, const std::string& name,
                                  const std::string& image_id, const CallInfo& info,
                                  absl::Duration wait, Cancellation* cancel, std::string* warning) {
  runtime::v1::ImageStatusRequest req;
  req.mutable_image()->set_image(name);
  const std::string bytes = req.SerializeAsString();
  const std::string status_method = SiblingMethod(method, "ImageStatus");
  const absl::Time give_up = std::min(absl::Now() + wait, info.deadline);
  absl::Duration pause = absl::Milliseconds(2);
  std::string last;
  while (true) {
    CallInfo poll;
    poll.deadline = std::min(give_up, absl::Now() + absl::Seconds(1));
    UpstreamReply r = upstream_->Call(status_method, bytes, poll, cancel);
    if (r.status.ok()) {
      runtime::v1::ImageStatusResponse resp;
      if (resp.ParseFromString(r.body) && resp.has_image()) {
        if (image_id.empty() || resp.image().id() == image_id) return;
        last = absl::StrCat("ImageStatus(", name, ") still shows ", resp.image().id());
      } else {
        last = absl::StrCat("ImageStatus(", name, ") not found yet");
      }
    } else {
      last = absl::StrCat("ImageStatus(", name, "): ", r.status.error_message());
    }
    if (absl::Now() + pause >= give_up || (cancel != nullptr && cancel->cancelled())) break;
    absl::SleepFor(pause);
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
  *warning = absl::StrCat("containerd's CRI cache did not show the new record within ",
                          absl::FormatDuration(wait), ": ", last);
}

UpstreamReply PullHandler::Pull(const std::string& method, const std::string& request,
                                const CallInfo& info, Cancellation* cancel) {
  const absl::Time start = absl::Now();
  const PullSettings settings = this->settings();
  Outcome out;
  DecisionLine& line = out.line;
  UpstreamReply reply;

  auto finish = [&](UpstreamReply r) {
    line.total_time = absl::Now() - start;
    line.code = StatusCodeName(static_cast<int>(r.status.error_code()));
    metrics_->CountPull(out.outcome);
    metrics_->pull_seconds.Observe(line.total_time);
    line.outcome = std::string(PullOutcomeName(out.outcome));
    if (sink_) sink_(line);
    return r;
  };
  auto fall_back = [&](FallbackReason reason, std::string detail) {
    out.outcome = PullOutcome::kFallback;
    line.reason = std::string(FallbackReasonName(reason));
    line.detail = std::move(detail);
    metrics_->CountFallback(reason);
    return finish(ForwardAsSent(method, request, info, cancel));
  };

  auto fields = ReadPullImageRequest(request);
  if (!fields.ok())
    return fall_back(FallbackReason::kRequest, std::string(fields.status().message()));
  line.image = fields->image;
  auto ref = registry::ParseReference(fields->image);
  if (!ref.ok()) return fall_back(FallbackReason::kRequest, std::string(ref.status().message()));
  // Which handler: only worth a question to containerd when some handler
  // has rules of its own.
  absl::Time lookup_deadline = absl::Now() + settings.sandbox_lookup_timeout;
  if (info.deadline != absl::InfiniteFuture()) {
    lookup_deadline = std::min(lookup_deadline, absl::Now() + (info.deadline - absl::Now()) / 4);
  }
  const PullRuntimeHandler handler = ResolvePullRuntimeHandler(
      fields->runtime_handler, fields->pod,
      settings.handlers_with_rules.empty() ? nullptr : sandboxes_, lookup_deadline);
  line.handler = handler.name;
  line.handler_source = handler.source;
  line.handler_error = handler.error;
  const bool own_record =
      !handler.name.empty() && settings.handlers_with_rules.count(handler.name) > 0;

  SelectionRequest sreq;
  sreq.reference = fields->image;
  sreq.parsed_reference = *ref;  // parsed once, here
  sreq.runtime_handler = handler.name;
  sreq.policy = PolicyKind::kBest;
  sreq.credentials = fields->credentials.empty() ? nullptr : &fields->credentials;
  ContentHandover* const handover = settings.content_handover ? handover_.load() : nullptr;
  sreq.fetch_chosen_content = handover != nullptr;
  line.policy = "best";
  // A caller's deadline is shared: selection takes at most half of what is
  // left, so containerd has the other half for the pull it falls back to.
  absl::Duration budget = settings.select_timeout;
  if (info.deadline != absl::InfiniteFuture()) {
    budget = std::min(budget, std::max(absl::ZeroDuration(), (info.deadline - absl::Now()) / 2));
  }
  bool busy = false;
  const absl::Time select_start = absl::Now();
  absl::StatusOr<Selection> sel = SelectWithin(sreq, ref->registry, budget, &busy);
  line.select_time = absl::Now() - select_start;
  metrics_->pull_select_seconds.Observe(line.select_time);
  if (busy) return fall_back(FallbackReason::kBusy, std::string(sel.status().message()));
  if (!sel.ok())
    return fall_back(ClassifySelectError(sel.status()), std::string(sel.status().message()));
  line.index = sel->document_digest;
  line.platform = sel->decision.host_platform;
  if (!sel->is_index) {
    out.outcome = PullOutcome::kUntouched;
    line.detail = "a single manifest: nothing to choose";
    return finish(ForwardAsSent(method, request, info, cancel));
  }
  if (sel->decision.fallback) {
    return fall_back(FallbackReason::kArtifacts, sel->decision.fallback_reason);
  }
  const Descriptor* chosen = sel->chosen();
  if (chosen == nullptr && settings.fail_when_nothing_fits) {
    // containerd would pull its first match anyway; imgsel knows it cannot
    // run here. kubelet shows this message in the pod's events.
    out.outcome = PullOutcome::kRefused;
    line.reason = std::string(FallbackReasonName(FallbackReason::kNoFit));
    line.detail = "refused: [server] nothing_fits = \"fail\"";
    UpstreamReply refused;
    refused.status = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                  NothingFitsMessage(fields->image, sel->decision));
    return finish(std::move(refused));
  }
  if (chosen == nullptr) {
    return fall_back(FallbackReason::kNoFit, "no entry of the index fits this host");
  }
  line.chosen = std::string(chosen->digest);
  const std::string record_name =
      own_record ? HandlerRecordName(ref->Name(), ref->tag, ref->digest, handler.name)
                 : CriImageName(ref->Name(), ref->tag, ref->digest);
  const std::string pinned = absl::StrCat(ref->Name(), "@", chosen->digest);
  auto rewritten = ReplacePullImageName(request, pinned);
  if (!rewritten.ok()) {
    return fall_back(FallbackReason::kRequest, std::string(rewritten.status().message()));
  }

  std::string handover_warning;
  const std::unique_ptr<HandoverLease> handed_over =
      HandOverBeforePull(handover, ref->registry, ref->repository, sel->chosen_content,
                         info.deadline, &handover_warning);
  if (!handover_warning.empty()) line.detail = handover_warning;
  if (handed_over != nullptr) line.handed_over = static_cast<int>(sel->chosen_content.size());
  UpstreamReply pulled = upstream_->Call(method, *rewritten, info, cancel);
  if (!pulled.status.ok()) {
    const bool caller_gone =
        (cancel != nullptr && cancel->cancelled()) || absl::Now() >= info.deadline;
    if (caller_gone) {
      out.outcome = PullOutcome::kFallback;
      line.reason = std::string(FallbackReasonName(FallbackReason::kDigestPull));
      line.detail = "the caller gave up during the pull by digest";
      return finish(std::move(pulled));
    }
    return fall_back(FallbackReason::kDigestPull,
                     absl::StrCat("pull of ", pinned, ": ", pulled.status.error_message()));
  }
  runtime::v1::PullImageResponse pull_resp;
  pull_resp.ParseFromString(pulled.body);

  ImageRecord record;
  record.name = record_name;
  record.media_type = std::string(chosen->media_type);
  record.digest = std::string(chosen->digest);
  record.size = chosen->size;
  record.labels = SelectedImageLabels(sel->document_digest);
  if (own_record) {
    record.labels[kHandlerLabel] = handler.name;
    record.labels[kRecordForLabel] = CriImageName(ref->Name(), ref->tag, ref->digest);
  }
  absl::Status put = records_->Put(record, absl::Now() + settings.record_timeout);
  if (!put.ok()) return fall_back(FallbackReason::kRecord, std::string(put.message()));
  line.record = record_name;

  std::string warning;
  WaitForCriCache(method, record_name, pull_resp.image_ref(), info, settings.status_wait, cancel,
                  &warning);
  if (!warning.empty()) {
    line.detail = line.detail.empty() ? warning : absl::StrCat(line.detail, "; ", warning);
  }
  out.outcome = PullOutcome::kSelected;
  return finish(std::move(pulled));
}

}  // namespace imgsel::plugin
