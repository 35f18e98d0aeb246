// Reading and rewriting a CRI PullImageRequest without losing anything.
//
// kubelet's PullImageRequest (runtime.v1, and the same field numbers in
// v1alpha2):
//
//   field  name            what imgseld does with it
//   1      image           ImageSpec: `image` (1) read and, for a selected
//                          entry, replaced by "repo@sha256:<chosen>";
//                          `runtime_handler` (19) read; annotations and every
//                          other field kept as they are
//   2      auth            AuthConfig: read for the registry, forwarded as is
//   3      sandbox_config  `metadata` (name, uid, namespace, attempt) read to
//                          find the pod's sandbox (plugin/sandbox_handlers.h);
//                          forwarded as is
//   other  (newer CRI)     forwarded as is
//
// The rewrite works on the wire encoding: every byte of the request except
// the image name field is copied unchanged, in order, so fields this build
// does not know survive exactly (re-serialising a parsed message would keep
// them too, but not necessarily their order or encoding).
//
// Pure functions; thread-safe.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "plugin/sandbox_handlers.h"
#include "registry/auth.h"

namespace imgsel::plugin {

struct PullImageFields {
  std::string image;                  // ImageSpec.image, as kubelet sent it
  std::string runtime_handler;        // ImageSpec.runtime_handler
  registry::Credentials credentials;  // from AuthConfig; empty when none
  PodIdentity pod;                    // sandbox_config.metadata; empty when none
};

// Parses the request; InvalidArgument when the bytes are not a
// PullImageRequest, the image is empty, the auth cannot be decoded, or one
// of its fields (server_address too) holds a control character
// (registry::CheckCredentialField).
absl::StatusOr<PullImageFields> ReadPullImageRequest(absl::string_view request);

// The request with ImageSpec.image set to `image` and every other byte kept.
// Works for every request whose field 1 is the ImageSpec (ImageStatus too).
// InvalidArgument when the bytes are not well-formed protobuf or carry no
// ImageSpec.
absl::StatusOr<std::string> ReplacePullImageName(absl::string_view request,
                                                 absl::string_view image);

}  // namespace imgsel::plugin
