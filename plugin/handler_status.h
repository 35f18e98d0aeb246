// ImageStatus for the runtime handler that asks (kubelet's
// RuntimeClassInImageCriApi sets ImageStatusRequest.image.runtime_handler).
//
// A handler with a [handlers.NAME] table has its own record of what was
// chosen for it (plugin/pull_handler.h HandlerRecordName); "repo:tag" is the
// default handler's. So that kubelet's IfNotPresent pulls for that handler
// instead of running the default's choice:
//
//   request                                   answer
//   no handler, or one without a table,       forwarded as sent
//   or an image id / unparsable name
//   the handler's record exists               containerd's ImageStatus of it
//   it does not, and "repo:tag" was recorded  "not present" (an empty
//   by imgseld (io.imgsel.selected-by)        ImageStatusResponse): kubelet
//                                             pulls, for this handler
//   it does not, and "repo:tag" is            forwarded as sent: an image
//   containerd's own (pulled or imported      imgsel never chose for anyone
//   before imgseld), or no record at all
//   any call here fails                       forwarded as sent
//
// Thread-safe; blocking (run it off gRPC's callback threads).
#pragma once

#include <optional>
#include <string>

#include "plugin/image_records.h"
#include "plugin/pull_handler.h"
#include "plugin/upstream.h"

namespace imgsel::plugin {

class HandlerImageStatus {
 public:
  // `pulls` gives the settings in force (handlers_with_rules); all three
  // outlive this.
  HandlerImageStatus(CriUpstream* upstream, ImageRecordWriter* records, const PullHandler* pulls);

  // True when `request` (an ImageStatusRequest's bytes) names a handler
  // with rules of its own: Answer it rather than forward it.
  bool Wants(absl::string_view request) const;

  // The answer per the table; nullopt: forward the request as sent.
  std::optional<UpstreamReply> Answer(const std::string& method, const std::string& request,
                                      const CallInfo& info, Cancellation* cancel);

 private:
  CriUpstream* upstream_;
  ImageRecordWriter* records_;
  const PullHandler* pulls_;
};

}  // namespace imgsel::plugin
