// imgsel.v1.Selector over gRPC (proto/imgsel/v1/selector.proto): Select and
// HostProfile, answered from the same SelectionPipeline the CRI proxy uses.
//
// Errors: a request without a source, an unparsable reference or index
// bytes past the limit -> INVALID_ARGUMENT with the reason; a registry
// answering "not found" -> NOT_FOUND. A registry that cannot be reached or a
// budget that runs out is not an RPC error: the answer has fallback = true
// and the reason.
//
// Thread-safe.
#pragma once

#include <memory>
#include <optional>

#include "absl/time/time.h"
#include "grpcpp/support/byte_buffer.h"
#include "imgsel/v1/selector.grpc.pb.h"
#include "plugin/call_threads.h"
#include "plugin/metrics.h"
#include "plugin/select_within.h"
#include "selector/pipeline.h"

namespace imgsel::plugin {

// The largest index accepted in a Select request (as the CLI's limit).
inline constexpr size_t kMaxIndexBytes = 2 << 20;
inline constexpr size_t kMaxReferenceBytes = 4096;

// A request is checked whole (source, reference, policy, view, auth)
// before anything is started for it. Calls with raw index bytes are then
// answered on gRPC's own thread (pure CPU, microseconds); calls that go to a
// registry run on a thread of their own, each holding one of
// kMaxRegistrySelects slots (RESOURCE_EXHAUSTED when none is free) until its
// selection ends.
//
// Select is a raw method: the request is parsed here and the answer written
// to wire bytes by EncodeSelectAnswer (select_answer.h), without building
// the generated response message; clients see the same imgsel.v1 messages.
class SelectorService final
    : public imgsel::v1::Selector::WithRawCallbackMethod_Select<
          imgsel::v1::Selector::WithCallbackMethod_HostProfile<imgsel::v1::Selector::Service>> {
 public:
  // `default_timeout` applies when a request gives none; both it and the
  // pipeline may be replaced by SetDefaultTimeout on reload.
  SelectorService(std::shared_ptr<SelectionPipeline> pipeline, Metrics* metrics,
                  absl::Duration default_timeout);

  void SetDefaultTimeout(absl::Duration timeout);
  // Calls not finished yet.
  int calls_in_flight() const { return calls_in_flight_.load(); }

  static constexpr int kMaxRegistrySelects = 256;

  grpc::ServerUnaryReactor* Select(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* HostProfile(grpc::CallbackServerContext* ctx,
                                        const imgsel::v1::HostProfileRequest* request,
                                        imgsel::v1::HostProfileResponse* response) override;

 private:
  std::shared_ptr<SelectionPipeline> pipeline_;
  Metrics* metrics_;
  std::atomic<int64_t> default_timeout_ns_;
  std::string host_json_;
  struct SelectCall;
  static grpc::Status Check(SelectCall& call);
  // `slot`: a selection by reference, run within its budget on a thread of
  // its own; none: index bytes, run here. A large selection's memory shares
  // go with the answer's bytes in `response`, counted until it has gone out.
  grpc::Status DoSelect(absl::Time deadline, const SelectCall& call,
                        std::optional<SelectionSlot> slot, grpc::ByteBuffer* response);

  std::atomic<int> calls_in_flight_{0};
  // Registry selections running, shared with their threads (SelectWithin).
  std::shared_ptr<SelectionPlaces> registry_selects_ = std::make_shared<SelectionPlaces>();
  // Selects by reference run here, off gRPC's callback threads, each ending
  // by its budget; joined when the service goes (last member).
  CallThreads select_threads_;
};

}  // namespace imgsel::plugin
