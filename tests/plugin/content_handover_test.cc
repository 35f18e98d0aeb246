// The content handover against a stand-in for containerd's content and
// leases services that answers as containerd 1.6 does (its Write handler
// answers a COMMIT twice: once in its loop, once more on the way out).
#include "plugin/content_handover.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h"
#include "oci/digest.h"
#include "plugin/upstream.h"

namespace imgsel::plugin {
namespace {

namespace ccontent = containerd::services::content::v1;
namespace cleases = containerd::services::leases::v1;

std::string Metadata(const grpc::ServerContext& ctx, const std::string& key) {
  auto it = ctx.client_metadata().find(key);
  return it == ctx.client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
}

struct Committed {
  std::string bytes;
  std::map<std::string, std::string> labels;
  std::string ns, lease;
};

class FakeContent final : public ccontent::Content::Service {
 public:
  grpc::Status Write(grpc::ServerContext* ctx,
                     grpc::ServerReaderWriter<ccontent::WriteContentResponse,
                                              ccontent::WriteContentRequest>* stream) override {
    ccontent::WriteContentRequest req;
    ccontent::WriteContentResponse resp;
    std::string data;
    while (stream->Read(&req)) {
      {
        absl::MutexLock lock(&mu);
        if (present.count(req.expected())) {
          return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, "blob exists");
        }
      }
      resp.set_action(req.action());
      if (req.action() == ccontent::WRITE) data += req.data();
      resp.set_offset(static_cast<int64_t>(data.size()));
      if (req.action() != ccontent::COMMIT) {
        stream->Write(resp);
        continue;
      }
      if (Sha256Digest(data) != req.expected() ||
          static_cast<int64_t>(data.size()) != req.total()) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "unexpected commit digest");
      }
      {
        absl::MutexLock lock(&mu);
        committed[req.expected()] = {data,
                                     {req.labels().begin(), req.labels().end()},
                                     Metadata(*ctx, "containerd-namespace"),
                                     Metadata(*ctx, "containerd-lease")};
      }
      stream->Write(resp);
      stream->Write(resp);  // containerd 1.6's deferred second answer
      return grpc::Status::OK;
    }
    return grpc::Status::OK;
  }

  absl::Mutex mu;
  std::set<std::string> present;
  std::map<std::string, Committed> committed;
};

class FakeLeases final : public cleases::Leases::Service {
 public:
  grpc::Status Create(grpc::ServerContext*, const cleases::CreateRequest* req,
                      cleases::CreateResponse* resp) override {
    absl::MutexLock lock(&mu);
    created[req->id()] = {req->labels().begin(), req->labels().end()};
    resp->mutable_lease()->set_id(req->id());
    return grpc::Status::OK;
  }
  grpc::Status Delete(grpc::ServerContext*, const cleases::DeleteRequest* req,
                      google::protobuf::Empty*) override {
    absl::MutexLock lock(&mu);
    deleted.insert(req->id());
    return grpc::Status::OK;
  }

  absl::Mutex mu;
  std::map<std::string, std::map<std::string, std::string>> created;
  std::set<std::string> deleted;
};

class ContentHandoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgsel-handover-XXXXXX";
    dir_ = mkdtemp(tmpl);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + dir_ + "/containerd.sock",
                             grpc::InsecureServerCredentials());
    builder.RegisterService(&content_);
    builder.RegisterService(&leases_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    handover_ = std::make_unique<ContainerdContentHandover>(UnixChannel(dir_ + "/containerd.sock"),
                                                            "k8s.io");
  }
  void TearDown() override {
    handover_.reset();
    if (server_) server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  static VerifiedBlob Blob(const std::string& media_type, const std::string& bytes) {
    return {media_type, Sha256Digest(bytes), bytes};
  }

  std::string dir_;
  FakeContent content_;
  FakeLeases leases_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<ContainerdContentHandover> handover_;
};

// Both blobs land with the label containerd's own pulls set, under a lease
// that expires by itself and is ended when the pull is over. The deadline
// is far: a handover that waited for it (an answer left unread) fails.
TEST_F(ContentHandoverTest, BlobsLandLabelledUnderALeaseThatEndsWithThePull) {
  const VerifiedBlob manifest = Blob("application/vnd.oci.image.manifest.v1+json", "{\"m\":1}");
  const VerifiedBlob config =
      Blob("application/vnd.oci.image.config.v1+json", std::string(3 << 20, 'c'));  // 3 chunks
  auto lease = handover_->HandOver("host:5000", "team/app", {manifest, config}, absl::Minutes(2),
                                   absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(lease.ok()) << lease.status();
  {
    absl::MutexLock lock(&content_.mu);
    ASSERT_EQ(content_.committed.size(), 2u);
    for (const VerifiedBlob* b : {&manifest, &config}) {
      const Committed& c = content_.committed.at(b->digest);
      EXPECT_EQ(c.bytes, b->bytes);
      EXPECT_EQ(c.labels.at("containerd.io/distribution.source.host:5000"), "team/app");
      EXPECT_EQ(c.ns, "k8s.io");
      EXPECT_TRUE(absl::StartsWith(c.lease, "imgsel-handover-")) << c.lease;
    }
  }
  std::string id;
  {
    absl::MutexLock lock(&leases_.mu);
    ASSERT_EQ(leases_.created.size(), 1u);
    id = leases_.created.begin()->first;
    EXPECT_EQ(leases_.created.begin()->second.count("containerd.io/gc.expire"), 1u);
    EXPECT_TRUE(leases_.deleted.empty());
  }
  lease->reset();
  absl::MutexLock lock(&leases_.mu);
  EXPECT_EQ(leases_.deleted.count(id), 1u);
}

// A blob containerd already has is success; one it refuses is an error
// that names it (the caller then lets containerd fetch).
TEST_F(ContentHandoverTest, PresentIsSuccessARefusalIsAnErrorNamingTheBlob) {
  const VerifiedBlob present = Blob("application/vnd.oci.image.manifest.v1+json", "{\"p\":1}");
  {
    absl::MutexLock lock(&content_.mu);
    content_.present.insert(present.digest);
  }
  auto ok = handover_->HandOver("host:5000", "app", {present}, absl::Minutes(2),
                                absl::Now() + absl::Seconds(30));
  EXPECT_TRUE(ok.ok()) << ok.status();

  VerifiedBlob wrong = Blob("application/vnd.oci.image.manifest.v1+json", "{\"w\":1}");
  wrong.bytes = "not the bytes that digest names";
  auto refused = handover_->HandOver("host:5000", "app", {wrong}, absl::Minutes(2),
                                     absl::Now() + absl::Seconds(30));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), wrong.digest)) << refused.status();
}

}  // namespace
}  // namespace imgsel::plugin
