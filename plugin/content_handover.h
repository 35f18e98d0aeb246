// Handing containerd what a selection already fetched: the chosen manifest
// and its config (selector/image_content.h) are written into containerd's
// content store before containerd is asked to pull the manifest by digest,
// so its pull finds them present and fetches only the layers. containerd's
// resolve of the digest still asks the registry (one HEAD); the manifest
// and config GETs it would have made are saved.
//
//   Leases.Create   id "imgsel-handover-<n>", containerd.io/gc.expire
//                   = now + `hold`, so nothing written is collected before
//                   the pull references it, and nothing outlives a crash
//   Content.Write   per blob: STAT, WRITE (1 MiB chunks), COMMIT with
//                   the expected digest and size (containerd hashes what it
//                   receives and refuses a mismatch) and the label
//                   containerd.io/distribution.source.<registry>=<repository>
//                   that containerd's own pulls set; ALREADY_EXISTS is
//                   success (the blob is there)
//   Leases.Delete   when the pull is over (HandoverLease's destructor); a
//                   failed delete is left to gc.expire
//
// Calls carry `containerd-namespace` (the CRI namespace) and, for writes,
// `containerd-lease`. Every call has the caller's deadline. A failure is
// returned, never thrown; the caller then lets containerd fetch as it would
// have (a pull never fails because of the handover).
//
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "selector/image_content.h"

namespace imgsel::plugin {

inline constexpr char kDistributionSourceLabelPrefix[] = "containerd.io/distribution.source.";

// Ends a handover's lease when it goes.
class HandoverLease {
 public:
  virtual ~HandoverLease() = default;
};

class ContentHandover {
 public:
  virtual ~ContentHandover() = default;
  // Writes `blobs` of `repository` ("app/web") at `registry` ("host:5000").
  // The lease returned keeps them until it is destroyed (at most `hold`).
  virtual absl::StatusOr<std::unique_ptr<HandoverLease>> HandOver(
      const std::string& registry, const std::string& repository,
      const std::vector<VerifiedBlob>& blobs, absl::Duration hold, absl::Time deadline) = 0;
};

class ContainerdContentHandover : public ContentHandover {
 public:
  struct Stubs;  // containerd's services, shared with the leases handed out

  // `channel` reaches containerd's socket; `ns` is the CRI namespace.
  ContainerdContentHandover(std::shared_ptr<grpc::Channel> channel, std::string ns);
  ~ContainerdContentHandover() override;

  absl::StatusOr<std::unique_ptr<HandoverLease>> HandOver(const std::string& registry,
                                                          const std::string& repository,
                                                          const std::vector<VerifiedBlob>& blobs,
                                                          absl::Duration hold,
                                                          absl::Time deadline) override;

 private:
  std::shared_ptr<Stubs> stubs_;
  std::string ns_;
  std::atomic<uint64_t> next_lease_{0};
};

// The handover a pull makes before containerd pulls `blobs[0]` by digest:
// the lease to keep until that pull is over, or null (nothing to hand over,
// no handover configured, or it failed: then *warning says why, and
// containerd fetches everything itself). The lease is held for what is left
// of `pull_deadline` (an hour at most) plus a minute.
std::unique_ptr<HandoverLease> HandOverBeforePull(ContentHandover* handover,
                                                  const std::string& registry,
                                                  const std::string& repository,
                                                  const std::vector<VerifiedBlob>& blobs,
                                                  absl::Time pull_deadline, std::string* warning);

}  // namespace imgsel::plugin
