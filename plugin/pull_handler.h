// PullImage through imgseld: select, let containerd pull the choice by
// digest, record it under the name kubelet asked for; or, when anything
// stands in the way, let containerd pull the request exactly as sent.
//
//   1. read the request (image, runtime handler, auth)         -> fallback "request"
//      the handler: ImageSpec's, else the pod's sandbox's
//      (plugin/sandbox_handlers.h), else the default           -> lookup errors: "default"
//   2. select within `select_timeout` (SelectionPipeline),    -> "resolve", "index",
//      and within half of what is left of the caller's           "timeout", "busy",
//      deadline, the rest being containerd's                     "artifacts", "no_fit"
//      not an index, or a manifest digest: forwarded untouched
//      (with [server] content_handover: the chosen manifest and config
//      fetched alongside the artifacts, written into containerd's
//      content store under a lease)                              -> on error: containerd fetches
//   3. forward PullImage(repo@sha256:<chosen>), every other
//      byte of the request unchanged                            -> on error: retried
//                                                                 once as sent ("digest_pull")
//   4. Images.Create/Update the record -> chosen manifest      -> "record": forwarded as sent
//      ("repo:tag"; for a handler with a [handlers.NAME] table
//      of its own, HandlerRecordName: the tag stays the default's)
//   5. ImageStatus(record) until containerd's CRI cache
//      shows the new image (bounded by `status_wait`)
//   6. containerd's answer to step 3 goes back to kubelet
//
// The rule behind every branch: a pull never fails because of imgseld when
// containerd alone would have succeeded. Every pull writes one decision line
// and counts its outcome.
//
// Thread-safe: Pull is called from many threads; SetSettings may be called
// at any time (calls in flight keep the settings they started with).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "plugin/content_handover.h"
#include "plugin/decision_log.h"
#include "plugin/image_records.h"
#include "plugin/metrics.h"
#include "plugin/sandbox_handlers.h"
#include "plugin/select_within.h"
#include "plugin/upstream.h"
#include "selector/pipeline.h"

namespace imgsel::plugin {

struct PullSettings {
  absl::Duration select_timeout = absl::Seconds(2);
  // How long to wait for containerd's CRI cache to see a new record.
  absl::Duration status_wait = absl::Seconds(2);
  absl::Duration record_timeout = absl::Seconds(5);
  // Selections running at once; a pull beyond that is forwarded as sent.
  // imgseld sets it to --max-pulls (daemon.cc), so the CRI path has one cap.
  int max_selections = 64;
  // [server] nothing_fits = "fail": an index with no entry for this host is
  // answered FAILED_PRECONDITION (kubelet: ErrImagePull) naming why.
  bool fail_when_nothing_fits = false;
  // Handlers with a [handlers.NAME] table: their choice may differ from the
  // default's, so it gets a record of its own (HandlerRecordName). Every
  // other handler gets the global rules, the default's choice and its tag.
  // Empty: no sandbox is looked up at all (every handler chooses alike).
  std::set<std::string> handlers_with_rules;
  // The sandbox lookup's share of a pull: one local call to containerd.
  absl::Duration sandbox_lookup_timeout = absl::Milliseconds(500);
  // [server] content_handover: hand the chosen manifest and config to the
  // content handover set (SetContentHandover); false: containerd fetches them.
  bool content_handover = true;
};

class PullHandler {
 public:
  using SelectFn = std::function<absl::StatusOr<Selection>(const SelectionRequest&)>;
  using LineSink = std::function<void(const DecisionLine&)>;

  // `select` runs on the pulling thread, bounded by its budget.
  // `upstream`, `records` and `metrics` outlive the handler.
  PullHandler(SelectFn select, CriUpstream* upstream, ImageRecordWriter* records, Metrics* metrics,
              LineSink sink);

  void SetSettings(const PullSettings& settings);
  // Where the chosen manifest and config go before containerd pulls by
  // digest (content_handover.h); null (the default): nowhere. Set before
  // serving; outlives the handler.
  void SetContentHandover(ContentHandover* handover) { handover_ = handover; }
  PullSettings settings() const;
  // Where a pull without ImageSpec.runtime_handler finds its pod's handler;
  // null (the default): none, the default handler. Set before serving;
  // `lookup` outlives the handler.
  void SetSandboxHandlers(SandboxHandlers* lookup) { sandboxes_ = lookup; }

  // The whole PullImage. `method` is the path the call came in on
  // ("/runtime.v1.ImageService/PullImage"); `request` its bytes.
  UpstreamReply Pull(const std::string& method, const std::string& request, const CallInfo& info,
                     Cancellation* cancel);

  // Selections still running (some may have been abandoned by their pull).
  int selections_in_flight() const { return places_->in_flight(); }

 private:
  struct Outcome;
  UpstreamReply ForwardAsSent(const std::string& method, const std::string& request,
                              const CallInfo& info, Cancellation* cancel);
  // `registry`: the one the request's reference names (parsed once, by Pull).
  absl::StatusOr<Selection> SelectWithin(const SelectionRequest& request,
                                         absl::string_view registry, absl::Duration budget,
                                         bool* busy);
  void WaitForCriCache(const std::string& method, const std::string& name,
                       const std::string& image_id, const CallInfo& info, absl::Duration wait,
                       Cancellation* cancel, std::string* warning);

  SelectFn select_;
  CriUpstream* upstream_;
  ImageRecordWriter* records_;
  std::atomic<ContentHandover*> handover_{nullptr};
  Metrics* metrics_;
  LineSink sink_;
  SandboxHandlers* sandboxes_ = nullptr;
  std::shared_ptr<SelectionPlaces> places_ = std::make_shared<SelectionPlaces>();
  mutable absl::Mutex mu_;
  PullSettings settings_ ABSL_GUARDED_BY(mu_);
};

// The name containerd's CRI plugin records for a reference: "repo:tag", or
// "repo@sha256:..." when pinned (a tag next to a digest is dropped, as CRI
// does).
std::string CriImageName(const std::string& repository, const std::string& tag,
                         const std::string& digest);

// The record of a choice made for runtime handler `handler` under rules of
// its own: "repo:<tag>.imgsel.<handler>" (a digest reference: the tag
// "sha256-<hex>"), a name containerd's CRI resolves like any tag, so
// ImageStatus and kubelet find it, and "repo:tag" stays the default
// handler's. A handler name that is not [A-Za-z0-9_.-]+, or a tag that
// would pass the 128 characters a tag may have, gives
// "repo:imgsel-<32 hex digits of sha256(tag, handler)>" instead.
std::string HandlerRecordName(const std::string& repository, const std::string& tag,
                              const std::string& digest, const std::string& handler);

// Which fallback reason a selection error stands for.
FallbackReason ClassifySelectError(const absl::Status& status);

}  // namespace imgsel::plugin
