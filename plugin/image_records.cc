#include "plugin/image_records.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h"
#include "plugin/decision_log.h"

namespace imgsel::plugin {
namespace {

namespace cimages = containerd::services::images::v1;

absl::Status FromGrpc(const grpc::Status& s, absl::string_view step) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      absl::StrCat("containerd Images.", step, ": ", s.error_message()));
}

void FillImage(const ImageRecord& record, cimages::Image* image) {
  image->set_name(record.name);
  for (const auto& [k, v] : record.labels) (*image->mutable_labels())[k] = v;
  containerd::types::Descriptor* target = image->mutable_target();
  target->set_media_type(record.media_type);
  target->set_digest(record.digest);
  target->set_size(record.size);
}

}  // namespace

struct ContainerdImageRecords::Stub {
  std::unique_ptr<cimages::Images::Stub> images;
};

std::map<std::string, std::string> SelectedImageLabels(const std::string& index_digest) {
  return {{kCriManagedLabel, "managed"}, {kIndexLabel, index_digest}, {kSelectedByLabel, "imgsel"}};
}

ContainerdImageRecords::ContainerdImageRecords(std::shared_ptr<grpc::Channel> channel,
                                               std::string ns)
    : stub_(new Stub{cimages::Images::NewStub(std::move(channel))}), ns_(std::move(ns)) {}

ContainerdImageRecords::~ContainerdImageRecords() = default;

absl::Status ContainerdImageRecords::Put(const ImageRecord& record, absl::Time deadline) {
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("containerd-namespace", ns_);
    ctx.set_deadline(absl::ToChronoTime(deadline));
    cimages::CreateImageRequest req;
    FillImage(record, req.mutable_image());
    cimages::CreateImageResponse resp;
    grpc::Status s = stub_->images->Create(&ctx, req, &resp);
    if (s.ok()) return absl::OkStatus();
    if (s.error_code() != grpc::StatusCode::ALREADY_EXISTS) return FromGrpc(s, "Create");
  }
  grpc::ClientContext ctx;
  ctx.AddMetadata("containerd-namespace", ns_);
  ctx.set_deadline(absl::ToChronoTime(deadline));
  cimages::UpdateImageRequest req;
  FillImage(record, req.mutable_image());
  req.mutable_update_mask()->add_paths("target");
  req.mutable_update_mask()->add_paths("labels");
  cimages::UpdateImageResponse resp;
  grpc::Status s = stub_->images->Update(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, "Update");
  return absl::OkStatus();
}

absl::StatusOr<ImageRecord> ContainerdImageRecords::Get(const std::string& name,
                                                        absl::Time deadline) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("containerd-namespace", ns_);
  ctx.set_deadline(absl::ToChronoTime(deadline));
  cimages::GetImageRequest req;
  req.set_name(name);
  cimages::GetImageResponse resp;
  grpc::Status s = stub_->images->Get(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, "Get");
  ImageRecord out;
  out.name = resp.image().name();
  out.media_type = resp.image().target().media_type();
  out.digest = resp.image().target().digest();
  out.size = resp.image().target().size();
  for (const auto& [k, v] : resp.image().labels()) out.labels[k] = v;
  return out;
}

absl::Status FailingImageRecords::Put(const ImageRecord& record, absl::Time) {
  return absl::UnavailableError(
      absl::StrCat("image record ", record.name, ": writes disabled by --inject-fault"));
}

absl::Status HeldImageRecords::Put(const ImageRecord& record, absl::Time deadline) {
  LogMessage("warn", absl::StrCat("inject-fault record-hold: holding the record ", record.name,
                                  " for ", absl::FormatDuration(hold_)));
  const absl::Duration budget = deadline - absl::Now();  // the write's own, after the hold
  absl::SleepFor(hold_);
  return next_->Put(record, absl::Now() + budget);
}

}  // namespace imgsel::plugin
