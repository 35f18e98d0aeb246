#include "plugin/selector_service.h"

#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "grpcpp/support/slice.h"
#include "matcher/host_profile.h"
#include "oci/utf8.h"
#include "plugin/select_answer.h"
#include "plugin/select_within.h"
#include "plugin/upstream.h"
#include "registry/auth.h"
#include "registry/reference.h"
#include "selector/memory_gate.h"

namespace imgsel::plugin {
namespace {

namespace v1 = imgsel::v1;

grpc::Status Invalid(const absl::Status& s) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(s.message()));
}

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

// A reference that cannot name an image is refused before any thread or
// registry is involved. `parsed` gets it parsed, for the pipeline not to
// parse it again (its registry is the key of its share of slots).
grpc::Status CheckReference(const std::string& reference,
                            std::optional<registry::Reference>* parsed) {
  if (reference.empty() || reference.size() > kMaxReferenceBytes) {
    return Invalid("reference: empty or longer than 4096 bytes");
  }
  auto ref = registry::ParseReference(reference);
  if (!ref.ok()) return Invalid(ref.status());
  *parsed = *std::move(ref);
  return grpc::Status::OK;
}

// The answer's wire bytes as the response, keeping `held` (a large
// selection's memory shares) alive with them: gRPC lets go of the slice when
// the answer has been sent or the call has ended, and the shares with it, so
// an answer waiting to go out stays counted against the memory budget.
grpc::ByteBuffer AnswerHolding(absl::string_view wire,
                               std::vector<std::shared_ptr<const void>> held) {
  if (held.empty()) return ToByteBuffer(wire);
  struct Owned {
    std::string bytes;
    std::vector<std::shared_ptr<const void>> held;
  };
  auto* owned = new Owned{std::string(wire), std::move(held)};
  grpc::Slice slice(
      owned->bytes.data(), owned->bytes.size(), [](void* p) { delete static_cast<Owned*>(p); },
      owned);
  return grpc::ByteBuffer(&slice, 1);
}

}  // namespace

// One Select from its request to its answer. Owned by the thread that runs
// it; `selection.index_bytes` points into `request`, `selection.credentials`
// at `credentials`, so it is never moved once checked.
struct SelectorService::SelectCall {
  v1::SelectRequest request;
  registry::Credentials credentials;
  SelectionRequest selection;
  std::string registry;  // a reference's registry, as Check parsed it
  // A large request's share of the memory budget (selector/memory_gate.h),
  // kept until its answer has gone out.
  std::shared_ptr<const MemoryGate::Share> input_share;
};

// Every check a request can fail, made before a thread or a registry slot
// is taken for it.
grpc::Status SelectorService::Check(SelectCall& call) {
  const v1::SelectRequest& request = call.request;
  SelectionRequest& sreq = call.selection;
  switch (request.source_case()) {
    case v1::SelectRequest::kReference:
      if (grpc::Status bad = CheckReference(request.reference(), &sreq.parsed_reference);
          !bad.ok()) {
        return bad;
      }
      call.registry = sreq.parsed_reference->registry;
      sreq.reference = request.reference();
      break;
    case v1::SelectRequest::kIndex:
      if (request.index().empty() || request.index().size() > kMaxIndexBytes) {
        return Invalid(absl::StrCat("index: empty or larger than ", kMaxIndexBytes, " bytes"));
      }
      sreq.index_bytes = request.index();
      break;
    default:
      return Invalid("a reference or the index bytes are required");
  }
  if (!v1::Policy_IsValid(request.policy())) {
    return Invalid(absl::StrCat("policy: unknown value ", request.policy()));
  }
  if (!v1::SelectView_IsValid(request.view())) {
    return Invalid(absl::StrCat("view: unknown value ", request.view()));
  }
  sreq.runtime_handler = request.runtime_handler();
  sreq.policy =
      request.policy() == v1::POLICY_FIRST_MATCH ? PolicyKind::kFirstMatch : PolicyKind::kBest;
  if (request.has_auth()) {
    const v1::RegistryAuth& a = request.auth();
    auto c = registry::CredentialsFromCri(a.username(), a.password(), a.auth(), a.identity_token(),
                                          a.registry_token());
    if (!c.ok()) return Invalid(c.status());
    call.credentials = *std::move(c);
    if (!call.credentials.empty()) sreq.credentials = &call.credentials;
  }
  return grpc::Status::OK;
}

SelectorService::SelectorService(std::shared_ptr<SelectionPipeline> pipeline, Metrics* metrics,
                                 absl::Duration default_timeout)
    : pipeline_(std::move(pipeline)),
      metrics_(metrics),
      default_timeout_ns_(absl::ToInt64Nanoseconds(default_timeout)),
      host_json_(HostProfileToJson(pipeline_->host())) {}

void SelectorService::SetDefaultTimeout(absl::Duration timeout) {
  default_timeout_ns_ = absl::ToInt64Nanoseconds(timeout);
}

grpc::ServerUnaryReactor* SelectorService::Select(grpc::CallbackServerContext* ctx,
                                                  const grpc::ByteBuffer* request_bytes,
                                                  grpc::ByteBuffer* response) {
  // gRPC's own reactor: its completion runs where the call ends, where a
  // reactor of ours would have its OnDone handed to another thread of
  // gRPC's, a wake-up and a context switch on every call. What must outlive
  // the call (a large selection's memory share) goes with the answer's bytes
  // instead (AnswerHolding).
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  calls_in_flight_.fetch_add(1);
  auto finish = [this, reactor](grpc::Status status) {
    reactor->Finish(std::move(status));
    calls_in_flight_.fetch_sub(1);
  };
  auto refuse = [this, reactor, &finish](grpc::Status status) {
    metrics_->CountSelect(status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED
                              ? SelectResult::kBusy
                              : SelectResult::kInvalid);
    finish(std::move(status));
    return reactor;
  };
  const auto chrono_deadline = ctx->deadline();
  const absl::Time deadline = chrono_deadline == std::chrono::system_clock::time_point::max()
                                  ? absl::InfiniteFuture()
                                  : absl::FromChrono(chrono_deadline);
  // A large request (an index handed in) takes its share of the memory
  // budget before anything is built from it - not even the parsed request -
  // and waits for it on a thread of the service's own, not on gRPC's
  // callback thread (selector/memory_gate.h).
  const size_t input = request_bytes->Length();
  if (input >= kUngatedInputBytes) {
    select_threads_.Run([this, finish, deadline, input, request_bytes, response]() mutable {
      const absl::Time wait_until =
          std::min(deadline, absl::Now() + absl::Nanoseconds(default_timeout_ns_.load()));
      auto share = MemoryGate::Process().Acquire(input, wait_until);
      if (!share.ok()) {
        metrics_->CountSelect(SelectResult::kBusy);
        finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            std::string(share.status().message())));
        return;
      }
      SelectCall call;
      call.input_share = std::make_shared<MemoryGate::Share>(*std::move(share));
      {
        grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(request_bytes));
        if (!call.request.ParseFromZeroCopyStream(&reader)) {
          metrics_->CountSelect(SelectResult::kInvalid);
          finish(Invalid("the request is not an imgsel.v1.SelectRequest"));
          return;
        }
      }
      if (grpc::Status bad = Check(call); !bad.ok()) {
        metrics_->CountSelect(SelectResult::kInvalid);
        finish(std::move(bad));
        return;
      }
      if (call.request.source_case() == v1::SelectRequest::kReference) {
        // A reference padded past the gate's threshold: answered as any
        // other reference, without a registry slot's fairness (rare).
        std::optional<SelectionSlot> slot =
            SelectionSlot::Take(registry_selects_, kMaxRegistrySelects, call.registry);
        if (!slot) {
          metrics_->CountSelect(SelectResult::kBusy);
          finish(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "too many selections waiting on registries; retry later"));
          return;
        }
        finish(DoSelect(deadline, call, std::move(slot), response));
        return;
      }
      finish(DoSelect(deadline, call, std::nullopt, response));
    });
    return reactor;
  }
  auto call = std::make_unique<SelectCall>();
  {
    grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(request_bytes));
    if (!call->request.ParseFromZeroCopyStream(&reader)) {
      return refuse(Invalid("the request is not an imgsel.v1.SelectRequest"));
    }
  }
  if (grpc::Status bad = Check(*call); !bad.ok()) return refuse(std::move(bad));
  if (call->request.source_case() != v1::SelectRequest::kReference) {
    finish(DoSelect(deadline, *call, std::nullopt, response));
    return reactor;
  }
  std::optional<SelectionSlot> slot =
      SelectionSlot::Take(registry_selects_, kMaxRegistrySelects, call->registry);
  if (!slot) {
    return refuse(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "too many selections waiting on registries, or on this "
                               "registry; retry later"));
  }
  // The selection waits on registries on a thread of the service's own,
  // holding its slot, and answers by its budget (select_within.h).
  select_threads_.Run(
      [this, finish, deadline, call = std::shared_ptr<SelectCall>(std::move(call)),
       slot = std::make_shared<std::optional<SelectionSlot>>(std::move(slot)),
       response]() mutable { finish(DoSelect(deadline, *call, std::move(*slot), response)); });
  return reactor;
}

grpc::Status SelectorService::DoSelect(absl::Time deadline, const SelectCall& call,
                                       std::optional<SelectionSlot> slot,
                                       grpc::ByteBuffer* response) {
  const v1::SelectRequest& request = call.request;
  SelectionRequest sreq = call.selection;
  const absl::Time start = absl::Now();
  auto done = [&](SelectResult result, grpc::Status status) {
    metrics_->CountSelect(result);
    metrics_->select_seconds.Observe(absl::Now() - start);
    return status;
  };
  absl::Duration budget = request.timeout_ms() > 0 ? absl::Milliseconds(request.timeout_ms())
                                                   : absl::Nanoseconds(default_timeout_ns_.load());
  if (deadline != absl::InfiniteFuture()) budget = std::min(budget, deadline - absl::Now());
  sreq.budget = budget;

  absl::StatusOr<Selection> sel =
      slot ? SelectWithin(
                 [pipeline = pipeline_](const SelectionRequest& r) { return pipeline->Select(r); },
                 sreq, budget, *std::move(slot))
           : pipeline_->Select(sreq);
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
    EncodeFallbackAnswer(sreq.reference, sreq.policy, s.message(), absl::Now() - start,
                         [response](absl::string_view wire) { *response = ToByteBuffer(wire); });
    return done(SelectResult::kFallback, grpc::Status::OK);
  }
  // The shares of a large index stay counted until the answer has gone out.
  std::vector<std::shared_ptr<const void>> held;
  if (call.input_share != nullptr) held.push_back(call.input_share);
  if (sel->memory_share != nullptr) held.push_back(sel->memory_share);
  EncodeSelectAnswer(*sel, request.include_decision_json(), request.view() == v1::SELECT_VIEW_BASIC,
                     [response, &held](absl::string_view wire) {
                       // Swapped in: ByteBuffer's assignment copies the
                       // buffer (a second allocation) and frees the first.
                       grpc::ByteBuffer answer = AnswerHolding(wire, std::move(held));
                       response->Swap(&answer);
                     });
  return done(sel->decision.fallback ? SelectResult::kFallback : SelectResult::kOk,
              grpc::Status::OK);
}

grpc::ServerUnaryReactor* SelectorService::HostProfile(grpc::CallbackServerContext* ctx,
                                                       const v1::HostProfileRequest*,
                                                       v1::HostProfileResponse* response) {
  // What the probe read from the host (os-release, uname) is not trusted to
  // be UTF-8; the answer must be.
  const imgsel::HostProfile& host = pipeline_->host();
  v1::Platform* p = response->mutable_platform();
  p->set_os(ToValidUtf8(host.platform.os));
  p->set_architecture(ToValidUtf8(host.platform.architecture));
  p->set_variant(ToValidUtf8(host.platform.variant));
  p->set_os_version(ToValidUtf8(host.platform.os_version));
  for (const std::string& f : host.platform.os_features) p->add_os_features(ToValidUtf8(f));
  for (const std::string& f : host.features) response->add_features(ToValidUtf8(f));
  response->set_profile_json(host_json_);  // JsonWriter writes U+FFFD for any byte not UTF-8
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace imgsel::plugin
