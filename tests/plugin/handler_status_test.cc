// ImageStatus asked by a runtime handler (RuntimeClassInImageCriApi): the
// table in plugin/handler_status.h, with containerd's CRI and image records
// replaced by fakes.
#include "plugin/handler_status.h"

#include <gtest/gtest.h>

#include <map>

#include "cri/runtime/v1/api.pb.h"

namespace imgsel::plugin {
namespace {

constexpr char kStatus[] = "/runtime.v1.ImageService/ImageStatus";

// containerd's CRI: ImageStatus answers the image id recorded for a name.
class FakeCri : public CriUpstream {
 public:
  UpstreamReply Call(const std::string&, absl::string_view request, const CallInfo&,
                     Cancellation*) override {
    runtime::v1::ImageStatusRequest req;
    req.ParseFromString(std::string(request));
    asked.push_back(req.image().image());
    UpstreamReply r;
    if (fail) {
      r.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "down");
      return r;
    }
    runtime::v1::ImageStatusResponse resp;
    auto it = ids.find(req.image().image());
    if (it != ids.end()) resp.mutable_image()->set_id(it->second);
    r.body = resp.SerializeAsString();
    return r;
  }
  std::map<std::string, std::string> ids;
  std::vector<std::string> asked;
  bool fail = false;
};

class FakeRecords : public ImageRecordWriter {
 public:
  absl::Status Put(const ImageRecord&, absl::Time) override { return absl::OkStatus(); }
  absl::StatusOr<ImageRecord> Get(const std::string& name, absl::Time) override {
    auto it = labels.find(name);
    if (it == labels.end()) return absl::NotFoundError(name);
    ImageRecord r;
    r.name = name;
    r.labels = it->second;
    return r;
  }
  std::map<std::string, std::map<std::string, std::string>> labels;
};

std::string StatusRequest(const std::string& image, const std::string& handler) {
  runtime::v1::ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  req.mutable_image()->set_runtime_handler(handler);
  return req.SerializeAsString();
}

TEST(HandlerImageStatusTest, AHandlerWithRulesIsAnsweredFromItsOwnRecord) {
  const std::string tag = "host:5000/app:v1";
  const std::string own = "host:5000/app:v1.imgsel.runc-b";
  enum Tag { kNone, kImgsel, kContainerds };
  struct Case {
    const char* name;
    std::string image, handler;
    bool own_record;
    Tag tag_record;
    bool containerd_fails;
    // nullopt: forwarded as sent; "": "not present"; else the image id.
    std::optional<std::string> want;
  };
  const Case cases[] = {
      {"no handler", tag, "", true, kImgsel, false, std::nullopt},
      {"a handler without rules", tag, "runc", true, kImgsel, false, std::nullopt},
      {"an image id", "sha256:0123", "runc-b", true, kImgsel, false, std::nullopt},
      {"own record", tag, "runc-b", true, kImgsel, false, "id-b"},
      {"no own record, the tag is imgseld's", tag, "runc-b", false, kImgsel, false, ""},
      {"no own record, the tag is containerd's", tag, "runc-b", false, kContainerds, false,
       std::nullopt},
      {"no record at all", tag, "runc-b", false, kNone, false, std::nullopt},
      {"containerd fails", tag, "runc-b", true, kImgsel, true, std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FakeCri cri;
    FakeRecords records;
    cri.fail = c.containerd_fails;
    if (c.own_record) cri.ids[own] = "id-b";
    if (c.tag_record != kNone) cri.ids[tag] = "id-default";
    if (c.tag_record == kImgsel) records.labels[tag] = SelectedImageLabels("sha256:idx");
    if (c.tag_record == kContainerds) records.labels[tag] = {{kCriManagedLabel, "managed"}};
    PullHandler pulls(nullptr, &cri, &records, nullptr, nullptr);
    PullSettings settings;
    settings.handlers_with_rules = {"runc-b"};
    pulls.SetSettings(settings);
    HandlerImageStatus statuses(&cri, &records, &pulls);

    const std::string request = StatusRequest(c.image, c.handler);
    const bool wants = statuses.Wants(request);
    std::optional<UpstreamReply> answer = statuses.Answer(kStatus, request, CallInfo(), nullptr);
    EXPECT_EQ(wants, answer.has_value() || !cri.asked.empty());
    if (!c.want) {
      EXPECT_FALSE(answer.has_value());
      continue;
    }
    ASSERT_TRUE(answer.has_value());
    ASSERT_TRUE(answer->status.ok());
    runtime::v1::ImageStatusResponse resp;
    ASSERT_TRUE(resp.ParseFromString(answer->body));
    EXPECT_EQ(resp.has_image() ? resp.image().id() : "", *c.want);
    ASSERT_FALSE(cri.asked.empty());
    EXPECT_EQ(cri.asked[0], own) << "asked containerd for the handler's own record";
  }
}

TEST(HandlerImageStatusTest, NothingIsTakenWhenNoHandlerHasRules) {
  FakeCri cri;
  FakeRecords records;
  PullHandler pulls(nullptr, &cri, &records, nullptr, nullptr);
  HandlerImageStatus statuses(&cri, &records, &pulls);
  EXPECT_FALSE(statuses.Wants(StatusRequest("host:5000/app:v1", "runc-b")));
  EXPECT_FALSE(statuses.Wants("\x0a\xff"));
}

}  // namespace
}  // namespace imgsel::plugin
