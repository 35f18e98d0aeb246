// containerd's image records: the name -> target descriptor table that
// containerd's CRI plugin reads (through its image events) to answer
// ImageStatus and ListImages.
//
// After containerd has pulled the chosen manifest by digest, imgseld points
// the name kubelet asked for ("host/app:v1") at that manifest, in the
// namespace the CRI plugin uses (`[server] namespace`, "k8s.io"):
//
//   Images.Create(name, target, labels)
//     ALREADY_EXISTS -> Images.Update(same, update_mask = ["target", "labels"])
//
// Calls carry the gRPC metadata `containerd-namespace`. Labels always
// include `io.cri-containerd.image=managed` (what the CRI plugin sets on
// the images it pulls) and imgseld's own:
//
//   io.imgsel.index        the index digest the entry was chosen from
//   io.imgsel.selected-by  "imgsel"
//   io.imgsel.handler      the runtime handler it was chosen for, on a
//                          handler's own record (plugin/pull_handler.h
//                          HandlerRecordName)
//   io.imgsel.record-for   on that record: the name kubelet asked for
//
// Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace imgsel::plugin {

inline constexpr char kCriManagedLabel[] = "io.cri-containerd.image";
inline constexpr char kIndexLabel[] = "io.imgsel.index";
inline constexpr char kSelectedByLabel[] = "io.imgsel.selected-by";
inline constexpr char kHandlerLabel[] = "io.imgsel.handler";
inline constexpr char kRecordForLabel[] = "io.imgsel.record-for";

struct ImageRecord {
  std::string name;  // "127.0.0.1:5000/demo:v1"
  std::string media_type;
  std::string digest;
  int64_t size = 0;
  std::map<std::string, std::string> labels;
};

// The labels imgseld puts on a record chosen from `index_digest`.
std::map<std::string, std::string> SelectedImageLabels(const std::string& index_digest);

class ImageRecordWriter {
 public:
  virtual ~ImageRecordWriter() = default;
  // Creates or replaces the record; an error names the step that failed.
  virtual absl::Status Put(const ImageRecord& record, absl::Time deadline) = 0;
  // The record named `name`; NotFound when there is none.
  virtual absl::StatusOr<ImageRecord> Get(const std::string& name, absl::Time deadline) {
    return absl::UnimplementedError("image records: Get");
  }
};

class ContainerdImageRecords : public ImageRecordWriter {
 public:
  // `channel` reaches containerd's socket; `ns` is the CRI namespace.
  ContainerdImageRecords(std::shared_ptr<grpc::Channel> channel, std::string ns);
  ~ContainerdImageRecords() override;

  absl::Status Put(const ImageRecord& record, absl::Time deadline) override;
  absl::StatusOr<ImageRecord> Get(const std::string& name, absl::Time deadline) override;

 private:
  struct Stub;
  std::unique_ptr<Stub> stub_;
  std::string ns_;
};

// A writer that always fails (`imgseld --inject-fault=record-write`), so an
// operator can watch the fallback path work on a real node.
class FailingImageRecords : public ImageRecordWriter {
 public:
  absl::Status Put(const ImageRecord& record, absl::Time deadline) override;
};

// A test hook, not a fallback drill (`imgseld --inject-fault=record-hold`):
// each Put logs "inject-fault record-hold: holding the record <name>", waits
// `hold`, then writes through `next`. It holds a pull at the one point no
// outside component can: containerd has pulled the chosen manifest and
// answered, the record is not written yet. The node fault tests kill
// imgseld there (tests/integration/node_faults_test.cc).
class HeldImageRecords : public ImageRecordWriter {
 public:
  HeldImageRecords(std::unique_ptr<ImageRecordWriter> next, absl::Duration hold)
      : next_(std::move(next)), hold_(hold) {}
  absl::Status Put(const ImageRecord& record, absl::Time deadline) override;
  absl::StatusOr<ImageRecord> Get(const std::string& name, absl::Time deadline) override {
    return next_->Get(name, deadline);
  }

 private:
  std::unique_ptr<ImageRecordWriter> next_;
  absl::Duration hold_;
};

}  // namespace imgsel::plugin
