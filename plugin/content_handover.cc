#include "plugin/content_handover.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"

namespace imgsel::plugin {
namespace {

namespace ccontent = containerd::services::content::v1;
namespace cleases = containerd::services::leases::v1;

// containerd takes up to 16 MiB a message; 1 MiB chunks stay far from it.
constexpr size_t kChunkBytes = size_t{1} << 20;
// Answers containerd may still send after the COMMIT's: one in 1.6, none
// in later versions; more means the stream is not what is expected.
constexpr int kMaxTrailingAnswers = 4;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view step) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat("containerd ", step, ": ", s.error_message()));
}

}  // namespace

struct ContainerdContentHandover::Stubs {
  std::unique_ptr<ccontent::Content::Stub> content;
  std::unique_ptr<cleases::Leases::Stub> leases;
  std::string ns;

  void Prepare(grpc::ClientContext& ctx, absl::Time deadline, const std::string& lease) const {
    ctx.AddMetadata("containerd-namespace", ns);
    if (!lease.empty()) ctx.AddMetadata("containerd-lease", lease);
    ctx.set_deadline(absl::ToChronoTime(deadline));
  }

  absl::Status Write(const VerifiedBlob& blob, const std::string& lease,
                     const std::map<std::string, std::string>& labels, absl::Time deadline) const {
    grpc::ClientContext ctx;
    Prepare(ctx, deadline, lease);
    auto stream = content->Write(&ctx);
    const std::string what = absl::StrCat("Content.Write ", blob.digest);
    const int64_t total = static_cast<int64_t>(blob.bytes.size());
    ccontent::WriteContentResponse resp;
    auto exchange = [&](const ccontent::WriteContentRequest& req) {
      return stream->Write(req) && stream->Read(&resp);
    };
    ccontent::WriteContentRequest req;
    req.set_action(ccontent::STAT);
    req.set_ref(absl::StrCat("imgsel-handover-", blob.digest));
    req.set_total(total);
    req.set_expected(blob.digest);
    bool ok = exchange(req);
    // An earlier attempt may have left part of the blob: go on from there.
    int64_t offset = ok ? std::min<int64_t>(std::max<int64_t>(resp.offset(), 0), total) : 0;
    while (ok && offset < total) {
      const size_t n = std::min(kChunkBytes, static_cast<size_t>(total - offset));
      req.Clear();
      req.set_action(ccontent::WRITE);
      req.set_ref(absl::StrCat("imgsel-handover-", blob.digest));
      req.set_offset(offset);
      req.set_data(blob.bytes.substr(static_cast<size_t>(offset), n));
      ok = exchange(req);
      offset += static_cast<int64_t>(n);
    }
    if (ok) {
      req.Clear();
      req.set_action(ccontent::COMMIT);
      req.set_ref(absl::StrCat("imgsel-handover-", blob.digest));
      req.set_total(total);
      req.set_offset(total);
      req.set_expected(blob.digest);
      for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
      ok = exchange(req);
    }
    stream->WritesDone();
    // containerd (1.6) answers a COMMIT twice: once in its loop and once
    // more on the way out of the handler. Finish only returns once every
    // message has been read, so read what is left (bounded: the stream ends
    // with the handler, and the deadline bounds the wait).
    int extra = 0;
    while (extra <= kMaxTrailingAnswers && stream->Read(&resp)) ++extra;
    if (extra > kMaxTrailingAnswers) ctx.TryCancel();  // Finish would wait for the deadline
    grpc::Status s = stream->Finish();
    if (s.error_code() == grpc::StatusCode::ALREADY_EXISTS) return absl::OkStatus();
    if (!s.ok()) return FromGrpc(s, what);
    if (!ok)
      return absl::UnavailableError(absl::StrCat("containerd ", what, ": stream ended early"));
    return absl::OkStatus();
  }
};

namespace {

class ContainerdLease : public HandoverLease {
 public:
  ContainerdLease(std::shared_ptr<const ContainerdContentHandover::Stubs> stubs, std::string id)
      : stubs_(std::move(stubs)), id_(std::move(id)) {}
  ~ContainerdLease() override {
    grpc::ClientContext ctx;
    stubs_->Prepare(ctx, absl::Now() + absl::Seconds(2), "");
    cleases::DeleteRequest req;
    req.set_id(id_);
    google::protobuf::Empty resp;
    stubs_->leases->Delete(&ctx, req, &resp).ok();  // else gc.expire ends it
  }

 private:
  std::shared_ptr<const ContainerdContentHandover::Stubs> stubs_;
  std::string id_;
};

}  // namespace

ContainerdContentHandover::ContainerdContentHandover(std::shared_ptr<grpc::Channel> channel,
                                                     std::string ns)
    : stubs_(new Stubs{ccontent::Content::NewStub(channel), cleases::Leases::NewStub(channel), ns}),
      ns_(std::move(ns)) {}

ContainerdContentHandover::~ContainerdContentHandover() = default;

absl::StatusOr<std::unique_ptr<HandoverLease>> ContainerdContentHandover::HandOver(
    const std::string& registry, const std::string& repository,
    const std::vector<VerifiedBlob>& blobs, absl::Duration hold, absl::Time deadline) {
  if (blobs.empty()) return absl::InvalidArgumentError("nothing to hand over");
  // Unique within this process and across restarts of it.
  const std::string id = absl::StrCat("imgsel-handover-", getpid(), "-", next_lease_.fetch_add(1));
  {
    grpc::ClientContext ctx;
    stubs_->Prepare(ctx, deadline, "");
    cleases::CreateRequest req;
    req.set_id(id);
    (*req.mutable_labels())["containerd.io/gc.expire"] =
        absl::FormatTime(absl::RFC3339_sec, absl::Now() + hold, absl::UTCTimeZone());
    cleases::CreateResponse resp;
    grpc::Status s = stubs_->leases->Create(&ctx, req, &resp);
    if (!s.ok()) return FromGrpc(s, "Leases.Create");
  }
  auto lease = std::make_unique<ContainerdLease>(stubs_, id);
  const std::map<std::string, std::string> labels = {
      {absl::StrCat(kDistributionSourceLabelPrefix, registry), repository}};
  for (const VerifiedBlob& blob : blobs) {
    if (absl::Status s = stubs_->Write(blob, id, labels, deadline); !s.ok()) return s;
  }
  return lease;
}

std::unique_ptr<HandoverLease> HandOverBeforePull(ContentHandover* handover,
                                                  const std::string& registry,
                                                  const std::string& repository,
                                                  const std::vector<VerifiedBlob>& blobs,
                                                  absl::Time pull_deadline, std::string* warning) {
  if (handover == nullptr || blobs.empty()) return nullptr;
  const absl::Time now = absl::Now();
  const absl::Duration hold = std::min(pull_deadline - now, absl::Hours(1)) + absl::Minutes(1);
  // A few local RPCs: a second is plenty, and containerd's own fetch is
  // the fallback.
  auto lease = handover->HandOver(registry, repository, blobs, hold,
                                  std::min(pull_deadline, now + absl::Seconds(1)));
  if (!lease.ok()) {
    *warning = absl::StrCat("content handover: ", lease.status().message(),
                            " (containerd fetches it itself)");
    return nullptr;
  }
  return *std::move(lease);
}

}  // namespace imgsel::plugin
