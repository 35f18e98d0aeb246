#include "plugin/selector_service.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/arena.h"
#include "matcher/decision_json.h"
#include "matcher/host_profile.h"
#include "registry/auth.h"

namespace imgsel::plugin {
namespace {

namespace v1 = imgsel::v1;

void PlatformToProto(const PlatformView& p, v1::Platform* out) {
  out->set_os(std::string(p.os));
  out->set_architecture(std::string(p.architecture));
  out->set_variant(std::string(p.variant));
  out->set_os_version(std::string(p.os_version));
  for (absl::string_view f : p.os_features) out->add_os_features(std::string(f));
  for (absl::string_view f : p.features) out->add_features(std::string(f));
}

void DescriptorToProto(const Descriptor& d, v1::Descriptor* out) {
  out->set_media_type(std::string(d.media_type));
  out->set_digest(std::string(d.digest));
  out->set_size(d.size);
  if (d.platform) PlatformToProto(*d.platform, out->mutable_platform());
  for (const auto& [k, v] : d.annotations) {
    (*out->mutable_annotations())[std::string(k)] = std::string(v);
  }
}

// One Select's request and answer on one arena: an answer is a few hundred
// small strings and messages (descriptors, annotation maps, reasons), which
// the arena hands out by bumping a pointer and frees at once when gRPC is
// done with the call. The first block sits inside the holder, so an
// ordinary call makes one allocation for all of it.
class ArenaMessages final : public grpc::MessageHolder<v1::SelectRequest, v1::SelectResponse> {
 public:
  ArenaMessages() : arena_(Options(initial_block_)) {
    set_request(google::protobuf::Arena::CreateMessage<v1::SelectRequest>(&arena_));
    set_response(google::protobuf::Arena::CreateMessage<v1::SelectResponse>(&arena_));
  }
  void Release() override { delete this; }

 private:
  static constexpr size_t kInitialBlock = 16 << 10;
  static google::protobuf::ArenaOptions Options(char* block) {
    google::protobuf::ArenaOptions o;
    o.initial_block = block;
    o.initial_block_size = kInitialBlock;
    return o;
  }
  alignas(16) char initial_block_[kInitialBlock];
  google::protobuf::Arena arena_;  // after the block it starts in
};

grpc::Status Invalid(const absl::Status& s) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(s.message()));
}

}  // namespace

void SelectionToProto(const Selection& sel, v1::SelectResponse* out, bool with_json, bool basic) {
  const Decision& d = sel.decision;
  if (const Descriptor* chosen = sel.chosen()) DescriptorToProto(*chosen, out->mutable_selected());
  out->set_fallback(d.fallback);
  out->set_fallback_reason(d.fallback_reason);
  out->set_nothing_to_choose(d.nothing_to_choose || !sel.is_index);
  out->set_policy(d.policy == PolicyKind::kFirstMatch ? v1::POLICY_FIRST_MATCH : v1::POLICY_BEST);
  out->set_host_platform(d.host_platform);
  out->set_reference(sel.reference);
  out->set_document_digest(sel.document_digest);
  out->set_document_media_type(sel.document_media_type);
  for (const std::string& w : sel.warnings) out->add_warnings(w);
  if (with_json) out->set_decision_json(DecisionToJson(d, 0));
  out->set_elapsed_us(static_cast<uint64_t>(absl::ToInt64Microseconds(sel.elapsed)));
  if (basic) return;
  const Candidate* winner = d.selected();
  for (const Candidate& c : d.candidates) {
    v1::Candidate* pc = out->add_candidates();
    pc->set_position(static_cast<uint32_t>(c.position));
    DescriptorToProto(d.index.manifests[c.position], pc->mutable_entry());
    pc->set_eligible(c.eligible);
    pc->set_selected(&c == winner);
    pc->set_score(c.score);
    pc->set_platform_rank(c.platform_rank);
    for (std::string& r : ExplainCandidate(d, c)) pc->add_reasons(std::move(r));
  }
  for (const auto& [entry, results] : sel.compat) {
    for (const auto& shared : results) {
      if (shared == nullptr) continue;
      const ArtifactResult& a = *shared;
      v1::CompatibilityResult* pr = out->add_compatibility();
      pr->set_entry_digest(entry);
      pr->set_artifact(a.id);
      pr->set_kind(a.kind);
      pr->set_on_index(a.on_index);
      pr->set_matched(a.matched);
      if (a.weight) {
        pr->set_weight(*a.weight);
        pr->set_has_weight(true);
      }
    }
  }
}

SelectorService::SelectorService(std::shared_ptr<SelectionPipeline> pipeline, Metrics* metrics,
                                 absl::Duration default_timeout)
    : pipeline_(std::move(pipeline)),
      metrics_(metrics),
      default_timeout_ns_(absl::ToInt64Nanoseconds(default_timeout)),
      host_json_(HostProfileToJson(pipeline_->host())) {
  SetMessageAllocatorFor_Select(&allocator_);
}

grpc::MessageHolder<v1::SelectRequest, v1::SelectResponse>*
SelectorService::ArenaAllocator::AllocateMessages() {
  return new ArenaMessages();
}

void SelectorService::SetDefaultTimeout(absl::Duration timeout) {
  default_timeout_ns_ = absl::ToInt64Nanoseconds(timeout);
}

grpc::ServerUnaryReactor* SelectorService::Select(grpc::CallbackServerContext* ctx,
                                                  const v1::SelectRequest* request,
                                                  v1::SelectResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_in_flight_.fetch_add(1);
  const auto chrono_deadline = ctx->deadline();
  const absl::Time deadline = chrono_deadline == std::chrono::system_clock::time_point::max()
                                  ? absl::InfiniteFuture()
                                  : absl::FromChrono(chrono_deadline);
  if (request->source_case() != v1::SelectRequest::kReference) {
    reactor->Finish(DoSelect(deadline, request, response));
    calls_in_flight_.fetch_sub(1);
    return reactor;
  }
  if (registry_selects_.fetch_add(1) >= kMaxRegistrySelects) {
    registry_selects_.fetch_sub(1);
    metrics_->CountSelect(SelectResult::kInvalid);
    reactor->Finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                 "too many selections waiting on registries; retry later"));
    calls_in_flight_.fetch_sub(1);
    return reactor;
  }
  std::thread([this, reactor, deadline, request, response] {
    grpc::Status status = DoSelect(deadline, request, response);
    registry_selects_.fetch_sub(1);
    reactor->Finish(std::move(status));
    calls_in_flight_.fetch_sub(1);
  }).detach();
  return reactor;
}

grpc::Status SelectorService::DoSelect(absl::Time deadline, const v1::SelectRequest* request,
                                       v1::SelectResponse* response) {
  const absl::Time start = absl::Now();
  auto done = [&](SelectResult result, grpc::Status status) {
    metrics_->CountSelect(result);
    metrics_->select_seconds.Observe(absl::Now() - start);
    return status;
  };
  SelectionRequest sreq;
  switch (request->source_case()) {
    case v1::SelectRequest::kReference:
      if (request->reference().empty() || request->reference().size() > kMaxReferenceBytes) {
        return done(SelectResult::kInvalid,
                    grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "reference: empty or longer than 4096 bytes"));
      }
      sreq.reference = request->reference();
      break;
    case v1::SelectRequest::kIndex:
      if (request->index().empty() || request->index().size() > kMaxIndexBytes) {
        return done(
            SelectResult::kInvalid,
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                         absl::StrCat("index: empty or larger than ", kMaxIndexBytes, " bytes")));
      }
      sreq.index_bytes = request->index();
      break;
    default:
      return done(SelectResult::kInvalid,
                  grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                               "a reference or the index bytes are required"));
  }
  if (!v1::SelectView_IsValid(request->view())) {
    return done(SelectResult::kInvalid,
                grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             absl::StrCat("view: unknown value ", request->view())));
  }
  sreq.runtime_handler = request->runtime_handler();
  sreq.policy =
      request->policy() == v1::POLICY_FIRST_MATCH ? PolicyKind::kFirstMatch : PolicyKind::kBest;
  registry::Credentials creds;
  if (request->has_auth()) {
    const v1::RegistryAuth& a = request->auth();
    auto c = registry::CredentialsFromCri(a.username(), a.password(), a.auth(), a.identity_token(),
                                          a.registry_token());
    if (!c.ok()) return done(SelectResult::kInvalid, Invalid(c.status()));
    creds = *std::move(c);
    if (!creds.empty()) sreq.credentials = &creds;
  }
  absl::Duration budget = request->timeout_ms() > 0 ? absl::Milliseconds(request->timeout_ms())
                                                    : absl::Nanoseconds(default_timeout_ns_.load());
  if (deadline != absl::InfiniteFuture()) budget = std::min(budget, deadline - absl::Now());
  sreq.budget = budget;

  absl::StatusOr<Selection> sel = pipeline_->Select(sreq);
  if (!sel.ok()) {
    const absl::Status& s = sel.status();
    if (s.code() == absl::StatusCode::kInvalidArgument ||
        s.code() == absl::StatusCode::kOutOfRange || s.code() == absl::StatusCode::kDataLoss) {
      return done(SelectResult::kInvalid, Invalid(s));
    }
    if (s.code() == absl::StatusCode::kNotFound) {
      return done(SelectResult::kInvalid,
                  grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(s.message())));
    }
    response->set_fallback(true);
    response->set_fallback_reason(std::string(s.message()));
    response->set_reference(sreq.reference);
    response->set_policy(sreq.policy == PolicyKind::kFirstMatch ? v1::POLICY_FIRST_MATCH
                                                                : v1::POLICY_BEST);
    response->set_elapsed_us(static_cast<uint64_t>(absl::ToInt64Microseconds(absl::Now() - start)));
    return done(SelectResult::kFallback, grpc::Status::OK);
  }
  SelectionToProto(*sel, response, request->include_decision_json(),
                   request->view() == v1::SELECT_VIEW_BASIC);
  return done(sel->decision.fallback ? SelectResult::kFallback : SelectResult::kOk,
              grpc::Status::OK);
}

grpc::ServerUnaryReactor* SelectorService::HostProfile(grpc::CallbackServerContext* ctx,
                                                       const v1::HostProfileRequest*,
                                                       v1::HostProfileResponse* response) {
  const imgsel::HostProfile& host = pipeline_->host();
  v1::Platform* p = response->mutable_platform();
  p->set_os(host.platform.os);
  p->set_architecture(host.platform.architecture);
  p->set_variant(host.platform.variant);
  p->set_os_version(host.platform.os_version);
  for (const std::string& f : host.platform.os_features) p->add_os_features(f);
  for (const std::string& f : host.features) response->add_features(f);
  response->set_profile_json(host_json_);
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace imgsel::plugin
