// imgseld between a kubelet (this test, over the CRI socket) and a real
// containerd pulling from a real registry on loopback. The example layout
// (examples/layout, tag demo) is pushed under several names; each image's
// layer holds /imgsel-variant naming its entry, so the test can see which
// entry containerd unpacked. imgseld runs with the saved x86-64-v3 host
// profile: the best entry is then `amd64-v3` (position 1), while
// containerd's own first match is `generic-amd64` (position 0).
#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "cri/runtime/v1/api.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "imgsel/v1/selector.grpc.pb.h"
#include "plugin/upstream.h"
#include "tests/integration/harness.h"
#include "tests/integration/round_trip_proxy.h"
#include "tests/integration/world.h"

#ifndef IMGSELD_BINARY
#error "IMGSELD_BINARY must name the imgseld binary"
#endif

namespace imgsel::integration {
namespace {

namespace fs = std::filesystem;

constexpr int kConcurrent = 16;

// A layout whose "demo" index has an unknown member nested deeper than
// imgsel's parser accepts; containerd's parser ignores it.
std::string MakeGarbageLayout() {
  const std::string dir = world->dir + "/garbage-layout";
  fs::copy(absl::StrCat(Examples(), "/layout"), dir, fs::copy_options::recursive);
  std::string index = Blob(kIndex);
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += "[";
  for (int i = 0; i < 200; ++i) deep += "]";
  index.insert(index.rfind('}'), absl::StrCat(",\n  \"x-nested\": ", deep, "\n"));
  const std::string tmp = dir + "/blobs/sha256/new";
  std::ofstream(tmp) << index;
  std::string out;
  if (!RunCommand({"/usr/bin/sha256sum", tmp}, absl::Seconds(10), &out).ok()) return "";
  const std::string hex = out.substr(0, 64);
  fs::rename(tmp, dir + "/blobs/sha256/" + hex);
  std::ofstream(dir + "/index.json")
      << "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
         "\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"digest\":"
         "\"sha256:"
      << hex << "\",\"size\":" << index.size()
      << ",\"annotations\":{\"org.opencontainers.image.ref.name\":\"demo\"}}]}\n";
  return dir;
}

// The whole point: containerd pulls and unpacks the entry imgsel chose, and
// kubelet's view of "repo:tag" is that entry.
TEST(ImgseldIntegration, PullGetsTheBestEntryNotTheFirst) {
  REQUIRE_WORLD();
  auto cri = Cri(world->main.cri_socket);
  auto ref = Pull(*cri, Ref("demo"));
  ASSERT_TRUE(ref.ok()) << ref.status() << ReadFile(world->main.log);
  EXPECT_EQ(*ref, ConfigDigest(kV3));

  auto image = Status(*cri, Ref("demo"));
  ASSERT_TRUE(image.has_value());
  EXPECT_EQ(image->id(), ConfigDigest(kV3));
  EXPECT_NE(std::find(image->repo_tags().begin(), image->repo_tags().end(), Ref("demo")),
            image->repo_tags().end());
  const std::string pinned = absl::StrCat(world->registry->host(), "/demo@", kV3);
  EXPECT_NE(std::find(image->repo_digests().begin(), image->repo_digests().end(), pinned),
            image->repo_digests().end())
      << image->DebugString();

  const std::vector<std::string> variants = world->containerd->SnapshotVariants();
  EXPECT_NE(std::find(variants.begin(), variants.end(), "amd64-v3"), variants.end());

  const std::string log = ReadFile(world->main.log);
  EXPECT_TRUE(absl::StrContains(log, "\"outcome\":\"selected\"")) << log;
  EXPECT_TRUE(absl::StrContains(log, kV3)) << log;
}

// Kubelets before 1.26 speak runtime.v1alpha2, which containerd 1.6 still
// serves: the same selection and record, through the same proxy.
TEST(ImgseldIntegration, V1alpha2PullGetsTheBestEntry) {
  REQUIRE_WORLD();
  runtime::v1::PullImageRequest pull;
  pull.mutable_image()->set_image(Ref("alpha"));
  runtime::v1::PullImageResponse pulled;
  grpc::Status s =
      CallAs(world->main.cri_socket, "/runtime.v1alpha2.ImageService/PullImage", pull, &pulled);
  ASSERT_TRUE(s.ok()) << s.error_message() << ReadFile(world->main.log);
  EXPECT_EQ(pulled.image_ref(), ConfigDigest(kV3));

  // Both API versions now see repo:tag as the chosen entry.
  runtime::v1::ImageStatusRequest status;
  status.mutable_image()->set_image(Ref("alpha"));
  runtime::v1::ImageStatusResponse alpha_view;
  s = CallAs(world->main.cri_socket, "/runtime.v1alpha2.ImageService/ImageStatus", status,
             &alpha_view);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(alpha_view.image().id(), ConfigDigest(kV3));
  auto cri = Cri(world->main.cri_socket);
  auto v1_view = Status(*cri, Ref("alpha"));
  ASSERT_TRUE(v1_view.has_value());
  EXPECT_EQ(v1_view->id(), ConfigDigest(kV3));
  const std::string pinned = absl::StrCat(world->registry->host(), "/alpha@", kV3);
  EXPECT_NE(std::find(v1_view->repo_digests().begin(), v1_view->repo_digests().end(), pinned),
            v1_view->repo_digests().end())
      << v1_view->DebugString();
  const std::string log = ReadFile(world->main.log);
  EXPECT_TRUE(absl::StrContains(log, "/alpha:v1")) << log;
}

// docs/deploy.md's pre-load route for the DaemonSet image: deploy/image.py
// builds it, skopeo wraps it as an OCI archive under the DaemonSet's name,
// ctr imports and tags it by digest, and CRI finds it by the digest the
// DaemonSet pins.
TEST(ImgseldIntegration, DaemonSetImagePreloadsIntoContainerd) {
  REQUIRE_WORLD();
#ifndef IMGSEL_BINARY
  GTEST_SKIP() << "the imgsel CLI is not part of this build";
#else
  const std::string dir = world->dir + "/image";
  const std::string name = "registry.example/imgsel/imgseld:0.1.0";
  std::string out;
  absl::Status built =
      RunCommand({"/usr/bin/python3", absl::StrCat(Examples(), "/../deploy/image.py"), "--imgseld",
                  IMGSELD_BINARY, "--imgsel", IMGSEL_BINARY, "--out", dir + "/layout"},
                 absl::Seconds(120), &out);
  ASSERT_TRUE(built.ok()) << built << out;
  const size_t at = out.find("sha256:");
  ASSERT_NE(at, std::string::npos) << out;
  const std::string digest = out.substr(at, 71);
  absl::Status archived = RunCommand({"/usr/bin/skopeo", "copy", "oci:" + dir + "/layout:imgseld",
                                      "oci-archive:" + dir + "/imgseld.tar:" + name},
                                     absl::Seconds(60), &out);
  ASSERT_TRUE(archived.ok()) << archived << out;
  absl::Status imported =
      RunCommand({"/usr/bin/ctr", "--address", world->containerd->socket(), "--namespace", "k8s.io",
                  "images", "import", "--snapshotter", "native", dir + "/imgseld.tar"},
                 absl::Seconds(60), &out);
  ASSERT_TRUE(imported.ok()) << imported << out;
  // ctr names the image by its tag only; the DaemonSet asks for it by
  // digest, which CRI answers from a record named repo@digest.
  absl::Status pinned =
      RunCommand({"/usr/bin/ctr", "--address", world->containerd->socket(), "--namespace", "k8s.io",
                  "images", "tag", name, "registry.example/imgsel/imgseld@" + digest},
                 absl::Seconds(30), &out);
  ASSERT_TRUE(pinned.ok()) << pinned << out;

  auto direct =
      runtime::v1::ImageService::NewStub(plugin::UnixChannel(world->containerd->socket()));
  std::optional<runtime::v1::Image> image;
  for (int i = 0; i < 50 && !image; ++i) {  // CRI follows the image event
    image = Status(*direct, "registry.example/imgsel/imgseld@" + digest);
    if (!image) absl::SleepFor(absl::Milliseconds(20));
  }
  if (!image) {
    std::string listing;
    (void)RunCommand({"/usr/bin/ctr", "--address", world->containerd->socket(), "--namespace",
                      "k8s.io", "images", "ls"},
                     absl::Seconds(10), &listing);
    auto by_tag = Status(*direct, name);
    FAIL() << "CRI does not find the imported image by its digest " << digest
           << "; import said: " << out << "\nctr images ls:\n"
           << listing << "\nby tag: " << (by_tag ? by_tag->DebugString() : "not found");
  }
  EXPECT_NE(std::find(image->repo_tags().begin(), image->repo_tags().end(), name),
            image->repo_tags().end())
      << image->DebugString();
#endif
}

TEST(ImgseldIntegration, SecondPullFetchesNothingNew) {
  REQUIRE_WORLD();
  auto cri = Cri(world->main.cri_socket);
  ASSERT_TRUE(Pull(*cri, Ref("again")).ok());
  const int blobs = world->containerd->ContentBlobCount();
  const size_t snapshots = world->containerd->SnapshotVariants().size();
  auto ref = Pull(*cri, Ref("again"));
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(*ref, ConfigDigest(kV3));
  EXPECT_EQ(world->containerd->ContentBlobCount(), blobs);
  EXPECT_EQ(world->containerd->SnapshotVariants().size(), snapshots);
}

TEST(ImgseldIntegration, ListAndRemovePassThrough) {
  REQUIRE_WORLD();
  auto cri = Cri(world->main.cri_socket);
  ASSERT_TRUE(Pull(*cri, Ref("demo-rm")).ok());
  {
    grpc::ClientContext ctx;
    runtime::v1::ListImagesRequest req;
    runtime::v1::ListImagesResponse resp;
    ASSERT_TRUE(cri->ListImages(&ctx, req, &resp).ok());
    bool found = false;
    for (const auto& img : resp.images()) {
      for (const auto& tag : img.repo_tags()) found |= tag == Ref("demo-rm");
    }
    EXPECT_TRUE(found);
  }
  {
    grpc::ClientContext ctx;
    runtime::v1::RemoveImageRequest req;
    req.mutable_image()->set_image(Ref("demo-rm"));
    runtime::v1::RemoveImageResponse resp;
    grpc::Status s = cri->RemoveImage(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  EXPECT_FALSE(Status(*cri, Ref("demo-rm")).has_value());
  // An error from containerd comes back as containerd said it (PullImage of
  // something that is not a reference goes to containerd as sent).
  auto direct = Cri(world->containerd->socket());
  grpc::Status via_proxy;
  grpc::Status from_containerd;
  for (auto* stub : {cri.get(), direct.get()}) {
    grpc::ClientContext ctx;
    runtime::v1::PullImageRequest req;
    req.mutable_image()->set_image("Not:A:Reference");
    runtime::v1::PullImageResponse resp;
    (stub == cri.get() ? via_proxy : from_containerd) = stub->PullImage(&ctx, req, &resp);
  }
  EXPECT_FALSE(from_containerd.ok());
  EXPECT_EQ(via_proxy.error_code(), from_containerd.error_code());
  EXPECT_EQ(via_proxy.error_message(), from_containerd.error_message());
}

// Each fallback ends with containerd's own first match, pulled fine.
void ExpectFirstMatch(const Daemon& d, const std::string& repo, const std::string& reason) {
  auto cri = Cri(d.cri_socket);
  auto ref = Pull(*cri, Ref(repo));
  ASSERT_TRUE(ref.ok()) << ref.status() << ReadFile(d.log);
  EXPECT_EQ(*ref, ConfigDigest(kGeneric));
  auto image = Status(*cri, Ref(repo));
  ASSERT_TRUE(image.has_value());
  EXPECT_EQ(image->id(), ConfigDigest(kGeneric));
  const std::string log = ReadFile(d.log);
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("\"reason\":\"", reason, "\""))) << log;
  EXPECT_TRUE(absl::StrContains(Metrics(d.metrics_port),
                                absl::StrCat("imgseld_fallbacks_total{reason=\"", reason, "\"} 1")))
      << Metrics(d.metrics_port);
}

TEST(ImgseldIntegration, FallbackWhenTheRegistryIsUnreachableForImgsel) {
  REQUIRE_WORLD();
  const std::string dead_certs = world->dir + "/certs-dead.d";
  ASSERT_TRUE(WriteHostsToml(dead_certs, world->registry->host(),
                             absl::StrCat("127.0.0.1:", FreeLoopbackPort()))
                  .ok());
  auto d = StartImgseld("unreachable", "", {}, dead_certs);
  ASSERT_TRUE(d.ok()) << d.status();
  ExpectFirstMatch(*d, "fb-unreach", "resolve");
}

TEST(ImgseldIntegration, FallbackOnAnIndexImgselCannotParse) {
  REQUIRE_WORLD();
  ExpectFirstMatch(world->main, "fb-garbage", "index");
}

TEST(ImgseldIntegration, FallbackWhenTheBudgetRunsOut) {
  REQUIRE_WORLD();
  auto d = StartImgseld("timeout", "select_timeout = \"1ms\"\n", {}, world->certs);
  ASSERT_TRUE(d.ok()) << d.status();
  ExpectFirstMatch(*d, "fb-timeout", "timeout");
}

TEST(ImgseldIntegration, FallbackWhenTheImageRecordCannotBeWritten) {
  REQUIRE_WORLD();
  auto d = StartImgseld("record", "", {"--inject-fault=record-write"}, world->certs);
  ASSERT_TRUE(d.ok());
  ExpectFirstMatch(*d, "fb-record", "record");
}

// An index with no entry for the host (a host profile of s390x: the
// example has none). By default containerd is asked as kubelet asked, and
// pulls its own first match; with nothing_fits = "fail" the pull fails with
// the host platform and why each entry was ruled out, which kubelet shows
// in the pod's events, and containerd is never asked: it has no image.
TEST(ImgseldIntegration, NothingFitsPullsFirstMatchOrFailsAsConfigured) {
  REQUIRE_WORLD();
  const std::string profile = world->dir + "/s390x.json";
  std::ofstream(profile) << R"({"platform": {"os": "linux", "architecture": "s390x"}})";
  for (const bool fail : {false, true}) {
    SCOPED_TRACE(fail ? "fail" : "first-match");
    const std::string name = fail ? "nofit-fail" : "nofit-first";
    auto d = StartImgseld(name, fail ? "nothing_fits = \"fail\"\n" : "", {}, world->certs,
                          /*wait=*/true, "", profile);
    ASSERT_TRUE(d.ok()) << d.status();
    auto cri = Cri(d->cri_socket);
    auto direct = Cri(world->containerd->socket());
    auto ref = Pull(*cri, Ref(name));
    if (!fail) {
      ASSERT_TRUE(ref.ok()) << ref.status() << ReadFile(d->log);
      EXPECT_EQ(*ref, ConfigDigest(kGeneric));  // containerd's own first match
      auto image = Status(*direct, Ref(name));
      ASSERT_TRUE(image.has_value());
      EXPECT_EQ(image->id(), ConfigDigest(kGeneric));
      continue;
    }
    ASSERT_FALSE(ref.ok()) << "pulled " << *ref;
    const std::string message(ref.status().message());
    EXPECT_TRUE(absl::StrContains(message, "runs on this host (linux/s390x)")) << message;
    EXPECT_TRUE(absl::StrContains(message, "manifests[0]")) << message;
    EXPECT_FALSE(Status(*direct, Ref(name)).has_value()) << "containerd pulled it anyway";
    EXPECT_TRUE(absl::StrContains(ReadFile(d->log), "\"reason\":\"no_fit\"")) << ReadFile(d->log);
  }
}

TEST(ImgseldIntegration, ConcurrentPullsOfDifferentImagesAreAllCorrect) {
  REQUIRE_WORLD();
  std::vector<std::thread> threads;
  std::vector<std::string> results(kConcurrent);
  for (int i = 0; i < kConcurrent; ++i) {
    threads.emplace_back([i, &results] {
      auto cri = Cri(world->main.cri_socket);
      auto ref = Pull(*cri, Ref(absl::StrCat("many", i)));
      results[i] = ref.ok() ? *ref : std::string(ref.status().message());
    });
  }
  for (auto& t : threads) t.join();
  auto cri = Cri(world->main.cri_socket);
  for (int i = 0; i < kConcurrent; ++i) {
    EXPECT_EQ(results[i], ConfigDigest(kV3)) << "many" << i;
    auto image = Status(*cri, Ref(absl::StrCat("many", i)));
    ASSERT_TRUE(image.has_value()) << "many" << i;
    EXPECT_EQ(image->id(), ConfigDigest(kV3)) << "many" << i;
  }
}

// A compatibility artifact attached to the v3 entry (with `imgsel attach`)
// that this host fails rules it out: containerd gets the next best entry.
TEST(ImgseldIntegration, CompatibilityArtifactRulesTheFirstChoiceOut) {
  REQUIRE_WORLD();
#ifndef IMGSEL_BINARY
  GTEST_SKIP() << "the imgsel CLI is not part of this build";
#else
  const std::string spec = WriteNeedsKernel7Spec(world->dir + "/needs-kernel-7.yaml");
  std::string out;
  absl::Status attached =
      RunCommand({IMGSEL_BINARY, "attach", absl::StrCat(world->registry->host(), "/compat@", kV3),
                  spec, "--hosts-dir", world->certs},
                 absl::Seconds(60), &out);
  ASSERT_TRUE(attached.ok()) << attached << out;
  auto cri = Cri(world->main.cri_socket);
  auto ref = Pull(*cri, Ref("compat"));
  ASSERT_TRUE(ref.ok()) << ref.status() << ReadFile(world->main.log);
  EXPECT_EQ(*ref, ConfigDigest(kAvx2));
  auto image = Status(*cri, Ref("compat"));
  ASSERT_TRUE(image.has_value());
  EXPECT_EQ(image->id(), ConfigDigest(kAvx2));
  const std::vector<std::string> variants = world->containerd->SnapshotVariants();
  EXPECT_NE(std::find(variants.begin(), variants.end(), "amd64-avx2-bmi2"), variants.end());
#endif
}

TEST(ImgseldIntegration, SelectorApiOverItsSocket) {
  REQUIRE_WORLD();
  auto channel =
      grpc::CreateChannel("unix:" + world->main.api_socket, grpc::InsecureChannelCredentials());
  auto api = imgsel::v1::Selector::NewStub(channel);
  {
    grpc::ClientContext ctx;
    imgsel::v1::SelectRequest req;
    req.set_reference(Ref("api"));
    imgsel::v1::SelectResponse resp;
    grpc::Status s = api->Select(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_FALSE(resp.fallback());
    EXPECT_EQ(resp.selected().digest(), kV3);
    EXPECT_EQ(resp.document_digest(), kIndex);
    EXPECT_EQ(resp.candidates_size(), 8);
    EXPECT_TRUE(resp.candidates(0).selected());
    EXPECT_FALSE(resp.candidates(0).reasons().empty());
  }
  {
    grpc::ClientContext ctx;
    imgsel::v1::SelectRequest req;
    req.set_index(Blob(kIndex));
    req.set_policy(imgsel::v1::POLICY_FIRST_MATCH);
    imgsel::v1::SelectResponse resp;
    ASSERT_TRUE(api->Select(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.selected().digest(), kGeneric);
  }
  {
    // The basic view: the same choice, without candidates.
    imgsel::v1::SelectRequest req;
    req.set_index(Blob(kIndex));
    imgsel::v1::SelectResponse full, basic;
    grpc::ClientContext full_ctx;
    ASSERT_TRUE(api->Select(&full_ctx, req, &full).ok());
    req.set_view(imgsel::v1::SELECT_VIEW_BASIC);
    grpc::ClientContext basic_ctx;
    ASSERT_TRUE(api->Select(&basic_ctx, req, &basic).ok());
    EXPECT_EQ(basic.selected().digest(), kV3);
    EXPECT_EQ(basic.selected().SerializeAsString(), full.selected().SerializeAsString());
    EXPECT_EQ(basic.host_platform(), full.host_platform());
    EXPECT_EQ(basic.candidates_size(), 0);
    EXPECT_EQ(full.candidates_size(), 8);
    EXPECT_LT(basic.ByteSizeLong() * 5, full.ByteSizeLong());
  }
  {
    grpc::ClientContext ctx;
    imgsel::v1::SelectRequest req;
    req.set_index(Blob(kIndex));
    req.set_view(static_cast<imgsel::v1::SelectView>(7));
    imgsel::v1::SelectResponse resp;
    grpc::Status s = api->Select(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(s.error_message(), "view")) << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    imgsel::v1::SelectRequest req;
    req.set_index(Blob(kIndex));
    req.set_policy(static_cast<imgsel::v1::Policy>(9));
    imgsel::v1::SelectResponse resp;
    grpc::Status s = api->Select(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_TRUE(absl::StrContains(s.error_message(), "policy: unknown value 9"))
        << s.error_message();
  }
  {
    grpc::ClientContext ctx;
    imgsel::v1::SelectRequest req;
    req.set_index("{not json");
    imgsel::v1::SelectResponse resp;
    EXPECT_EQ(api->Select(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    imgsel::v1::SelectRequest req;
    imgsel::v1::SelectResponse resp;
    EXPECT_EQ(api->Select(&ctx, req, &resp).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // A reference that cannot name an image is refused with the reason.
  for (const std::string& bad : {std::string(""), std::string("Bad//Name:tag"),
                                 std::string(5000, 'a'), std::string("repo@sha256:123")}) {
    grpc::ClientContext ctx;
    imgsel::v1::SelectRequest req;
    req.set_reference(bad);
    imgsel::v1::SelectResponse resp;
    grpc::Status s = api->Select(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad.substr(0, 40);
    EXPECT_FALSE(s.error_message().empty()) << bad.substr(0, 40);
  }
  {
    grpc::ClientContext ctx;
    imgsel::v1::HostProfileRequest req;
    imgsel::v1::HostProfileResponse resp;
    ASSERT_TRUE(api->HostProfile(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.platform().architecture(), "amd64");
    EXPECT_EQ(resp.platform().variant(), "v3");
    EXPECT_TRUE(absl::StrContains(resp.profile_json(), "\"platform\""));
  }
  {
    // Server reflection lists the services (what `grpcurl list` shows):
    // ServerReflectionRequest{list_services: ""} encoded by hand.
    grpc::GenericStub generic(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    grpc::CompletionQueue cq;
    auto call = generic.PrepareCall(
        &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
    void* tag;
    bool ok;
    call->StartCall(reinterpret_cast<void*>(1));
    ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
    const std::string list_services("\x3a\x00", 2);
    call->WriteLast(plugin::ToByteBuffer(list_services), grpc::WriteOptions(),
                    reinterpret_cast<void*>(2));
    ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
    grpc::ByteBuffer answer;
    call->Read(&answer, reinterpret_cast<void*>(3));
    ASSERT_TRUE(cq.Next(&tag, &ok) && ok);
    const std::string text = plugin::FromByteBuffer(answer);
    EXPECT_TRUE(absl::StrContains(text, "imgsel.v1.Selector")) << text;
    EXPECT_TRUE(absl::StrContains(text, "grpc.health.v1.Health")) << text;
    grpc::Status status;
    call->Finish(&status, reinterpret_cast<void*>(4));
    cq.Next(&tag, &ok);
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
  }
  {
    auto health = grpc::health::v1::Health::NewStub(channel);
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
}

// containerd_socket naming imgseld's own CRI socket through a symlink, which
// no reading of the file can see: the start is refused, where it would have
// forwarded every call to itself.
TEST(ImgseldIntegration, RefusesToForwardToItself) {
  REQUIRE_WORLD();
  const std::string dir = world->dir + "/self";
  fs::create_directories(dir);
  const std::string link = dir + "/containerd.sock";
  fs::create_symlink(dir + "/cri.sock", link);
  const std::string config = dir + "/imgsel.toml";
  std::ofstream(config) << "version = 1\n[server]\nsocket = \"" << dir << "/imgsel.sock\"\n"
                        << "cri_socket = \"" << dir << "/cri.sock\"\n"
                        << "containerd_socket = \"" << link << "\"\n";
  const std::string log = dir + "/imgseld.log";
  auto p = Process::Spawn({IMGSELD_BINARY, "--config", config, "--host-profile",
                           absl::StrCat(Examples(), "/hosts/amd64-v3.json")},
                          log);
  ASSERT_TRUE(p.ok());
  const int status = (*p)->Signal(0, absl::Seconds(10));
  ASSERT_NE(status, -1) << "imgseld kept running" << ReadFile(log);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_TRUE(absl::StrContains(
      ReadFile(log), "[server] containerd_socket: " + link + " is imgseld's own CRI socket"))
      << ReadFile(log);
}

TEST(ImgseldIntegration, SocketsAreExclusiveAndRestricted) {
  REQUIRE_WORLD();
  struct stat st;
  ASSERT_EQ(stat(world->main.cri_socket.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660);
  // A second daemon on live sockets refuses to start.
  const std::string log = world->dir + "/second.log";
  auto p = Process::Spawn({IMGSELD_BINARY, "--config", world->main.config, "--host-profile",
                           absl::StrCat(Examples(), "/hosts/amd64-v3.json")},
                          log);
  ASSERT_TRUE(p.ok());
  const int status = (*p)->Signal(0, absl::Seconds(10));
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  EXPECT_TRUE(absl::StrContains(ReadFile(log), "in use")) << ReadFile(log);
  EXPECT_TRUE(WaitForSocket(world->main.cri_socket, absl::Seconds(1)));
}

// Under systemd socket activation imgseld serves the descriptors it is
// given and creates no socket itself: named (FileDescriptorName=, here
// systemd-socket-activate --fdname), each serves the role its name says
// wherever it is bound and in whatever order; and it tells its service
// manager READY=1 once both serve.
TEST(ImgseldIntegration, SocketActivation) {
  REQUIRE_WORLD();
  if (access("/usr/bin/systemd-socket-activate", X_OK) != 0) {
    if (getenv("IMGSEL_REQUIRE_INTEGRATION") != nullptr)
      FAIL() << "systemd-socket-activate missing";
    GTEST_SKIP() << "systemd-socket-activate not installed";
  }
  // The budget is not the subject: imgseld starts at the first connection,
  // and its first selection (slower still under ThreadSanitizer) may take
  // more than the default 2 s, which would fall back to first match.
  auto d = StartImgseld("activated", "select_timeout = \"10s\"\n", {}, world->certs,
                        /*wait=*/false);
  ASSERT_TRUE(d.ok());
  d->process.reset();  // started below, through systemd-socket-activate
  // Bound elsewhere than the config says, the CRI socket first.
  const std::string cri_path = d->dir + "/named-cri.sock", api_path = d->dir + "/named-api.sock";
  const std::string notify_path = d->dir + "/notify";
  const int notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un notify_addr{};
  notify_addr.sun_family = AF_UNIX;
  strncpy(notify_addr.sun_path, notify_path.c_str(), sizeof(notify_addr.sun_path) - 1);
  ASSERT_EQ(bind(notify_fd, reinterpret_cast<sockaddr*>(&notify_addr), sizeof(notify_addr)), 0);
  auto p = Process::Spawn(
      {"/usr/bin/systemd-socket-activate", "-l", cri_path, "-l", api_path, "--fdname=cri:selector",
       "-E", "NOTIFY_SOCKET=" + notify_path, IMGSELD_BINARY, "--config", d->config,
       "--host-profile", absl::StrCat(Examples(), "/hosts/amd64-v3.json")},
      d->log);
  ASSERT_TRUE(p.ok());
  d->process = *std::move(p);
  ASSERT_TRUE(WaitForSocket(cri_path, absl::Seconds(10))) << ReadFile(d->log);
  // systemd-socket-activate starts imgseld at the first connection.
  auto cri = Cri(cri_path);
  auto ref = Pull(*cri, Ref("demo"));
  ASSERT_TRUE(ref.ok()) << ref.status() << ReadFile(d->log);
  EXPECT_EQ(*ref, ConfigDigest(kV3));
  pollfd ready{notify_fd, POLLIN, 0};
  char buf[512] = {};
  ASSERT_EQ(poll(&ready, 1, 10000), 1) << "no message to NOTIFY_SOCKET";
  ASSERT_GT(recv(notify_fd, buf, sizeof(buf) - 1, 0), 0);
  close(notify_fd);
  EXPECT_TRUE(absl::StartsWith(buf, "READY=1\n")) << buf;
  auto api = imgsel::v1::Selector::NewStub(
      grpc::CreateChannel("unix:" + api_path, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  imgsel::v1::HostProfileRequest req;
  imgsel::v1::HostProfileResponse resp;
  EXPECT_TRUE(api->HostProfile(&ctx, req, &resp).ok());
  EXPECT_FALSE(fs::exists(d->cri_socket)) << "created a socket although one was passed";
  EXPECT_FALSE(fs::exists(d->api_socket)) << "created a socket although one was passed";
}

// `imgseld --check` on this node: the running imgseld, the real containerd
// and certs.d. kubelet is not installed here, which it reports as unknown,
// not as a problem. A wrong containerd socket, a namespace containerd does
// not have, and a registry config that cannot be read are problems, each
// on its own line, and make the exit status 1.
TEST(ImgseldIntegration, CheckWalksTheChain) {
  REQUIRE_WORLD();
  // containerd makes a namespace on its first use: a node's kubelet has
  // long done so; here, a pull does.
  auto cri = Cri(world->main.cri_socket);
  ASSERT_TRUE(Pull(*cri, Ref("demo")).ok());
  const std::string good = ReadFile(world->main.config);
  const std::string not_a_dir = world->dir + "/certs-file";
  std::ofstream(not_a_dir) << "not a directory\n";
  struct Case {
    const char* what;
    std::vector<std::pair<std::string, std::string>> edits;
    int exit_code;
    std::vector<std::string> lines;
  };
  const std::string containerd = world->containerd->socket();
  const std::vector<Case> cases = {
      {"healthy",
       {},
       0,
       {"ok      config: ",
        "ok      cri socket: " + world->main.cri_socket +
            ": listening, containerd through imgseld SERVING",
        "ok      api socket: " + world->main.api_socket + ": listening, imgseld SERVING",
        "ok      containerd: " + containerd + ": SERVING, namespace \"k8s.io\" present",
        "ok      registry: " + world->certs + ": readable, 1 registry configured",
        "unknown kubelet: cannot tell: no kubelet process"}},
      {"wrong containerd socket",
       {{containerd, world->dir + "/no-containerd.sock"}},
       1,
       {"problem containerd: " + world->dir +
            "/no-containerd.sock ([server] containerd_socket): "
            "cannot connect (No such file or directory)",
        "ok      api socket: "}},
      {"unknown namespace",
       {{"[server]\n", "[server]\nnamespace = \"not-k8s\"\n"}},
       1,
       {"problem containerd: " + containerd +
        ": SERVING, but namespace \"not-k8s\" does not exist"}},
      {"unreadable registry dir",
       {{world->certs, not_a_dir}},
       1,
       {"problem registry: " + not_a_dir +
            " ([registry] config_path): cannot read it (Not a "
            "directory)",
        "ok      containerd: "}},
  };
  for (const Case& c : cases) {
    std::string text = good;
    for (const auto& [from, to] : c.edits) text = absl::StrReplaceAll(text, {{from, to}});
    const std::string config = absl::StrCat(world->dir, "/check-", c.edits.size(), "-",
                                            std::hash<std::string>()(c.what), ".toml");
    std::ofstream(config) << text;
    const std::string log = config + ".out";
    auto p = Process::Spawn({IMGSELD_BINARY, "--config", config, "--check"}, log);
    ASSERT_TRUE(p.ok());
    const int status = (*p)->Signal(0, absl::Seconds(30));
    ASSERT_NE(status, -1) << c.what << ": --check did not finish";
    const std::string out = ReadFile(log);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == c.exit_code) << c.what << "\n" << out;
    for (const std::string& line : c.lines) {
      EXPECT_TRUE(absl::StrContains(out, line))
          << c.what << ": no line with\n  " << line << "\nin\n"
          << out;
    }
  }
}

TEST(ImgseldIntegration, ReloadKeepsTheLastGoodConfigAndTermDrains) {
  REQUIRE_WORLD();
  auto d = StartImgseld("signals", "", {}, world->certs);
  ASSERT_TRUE(d.ok());
  const std::string good = ReadFile(d->config);
  std::ofstream(d->config) << "version = 1\n[server]\nselect_timeout = \"soon\"\n";
  kill(d->process->pid(), SIGHUP);
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains(ReadFile(d->log), "keeping the running config") &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(absl::StrContains(ReadFile(d->log), "keeping the running config"));
  // Still serving with the old config.
  auto cri = Cri(d->cri_socket);
  ASSERT_TRUE(Pull(*cri, Ref("demo")).ok()) << ReadFile(d->log);
  EXPECT_TRUE(absl::StrContains(Metrics(d->metrics_port),
                                "imgseld_config_reloads_total{result=\"error\"} 1"));
  // A good file that also changes settings a reload cannot apply: applied,
  // and each of those named.
  std::string changed =
      absl::StrReplaceAll(good, {{"request_timeout = \"5s\"", "request_timeout = \"7s\""},
                                 {"drain_timeout = \"3s\"", "drain_timeout = \"4s\""}});
  changed += "[compat]\ncache_max_bytes = 1048576\n";
  std::ofstream(d->config) << changed;
  kill(d->process->pid(), SIGHUP);
  const absl::Time applied_by = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains(ReadFile(d->log), "applied") && absl::Now() < applied_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const std::string log = ReadFile(d->log);
  EXPECT_TRUE(absl::StrContains(log,
                                "reload: [compat] cache_max_bytes, [registry] "
                                "request_timeout changed; they take effect on restart"))
      << log;
  EXPECT_TRUE(absl::StrContains(log, "applied")) << log;
  EXPECT_TRUE(
      absl::StrContains(Metrics(d->metrics_port), "imgseld_config_reloads_total{result=\"ok\"} 1"));
  std::ofstream(d->config) << good;
  kill(d->process->pid(), SIGHUP);
  const int status = d->process->Signal(SIGTERM, absl::Seconds(8));
  ASSERT_NE(status, -1) << "imgseld did not stop within drain_timeout";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_FALSE(fs::exists(d->cri_socket));
  EXPECT_FALSE(fs::exists(d->api_socket));
  std::cerr << ReadFile(d->log);
}

// `imgseld --check-config`: the same reading of the file as a start and a
// reload, without serving; what `systemctl reload` runs first.
TEST(ImgseldIntegration, CheckConfigSaysOkOrWhereTheErrorIs) {
  const std::string dir = ::testing::TempDir() + "/imgseld-check";
  fs::create_directories(dir);
  struct Case {
    const char* toml;
    int exit_code;
    const char* output;  // in what it prints
  };
  const Case cases[] = {
      {"version = 1\n[server]\nmetrics = \"127.0.0.1:9464\"\n", 0, "imgsel.toml: ok"},
      {"version = 1\n[server]\nmetrics = \"0.0.0.0:9464\"\n", 1,
       "imgsel.toml:3:11: metrics address \"0.0.0.0:9464\": only loopback"},
      {"version = 1\n[server]\nselect_timeout = 2\n", 1, "imgsel.toml:3:18"},
      {"version = 1\n[sever]\n", 1, "imgsel.toml:2:2: unknown key \"sever\"; did you mean"},
  };
  for (const Case& c : cases) {
    const std::string config = dir + "/imgsel.toml";
    std::ofstream(config) << c.toml;
    const std::string out = dir + "/out.txt";
    auto p = Process::Spawn({IMGSELD_BINARY, "--config", config, "--check-config"}, out);
    ASSERT_TRUE(p.ok());
    const int status = (*p)->Signal(0, absl::Seconds(10));
    ASSERT_NE(status, -1) << c.toml;
    ASSERT_TRUE(WIFEXITED(status)) << c.toml;
    EXPECT_EQ(WEXITSTATUS(status), c.exit_code) << c.toml << ReadFile(out);
    EXPECT_TRUE(absl::StrContains(ReadFile(out), c.output)) << c.toml << ReadFile(out);
  }
}

// What issue 17 asks of the CRI path: a cold pull through imgseld (default
// config, an index without artifacts) asks the registry for no more round
// trips one after the other than containerd alone, and containerd fetches
// neither the manifest nor the config imgseld already has. With an artifact
// attached it costs at most the referrers floor more (list, artifact
// manifest, artifact blob) while the artifacts are cold, and nothing more
// once they are warm. Every pull goes through a proxy that holds each
// request 150 ms and logs it, into a containerd of the test's own (nothing
// the rest of the suite pulled is there), and the image is removed after
// each pull (containerd's synchronous garbage collection), so each one is
// cold for containerd.
TEST(ImgseldIntegration, AColdPullThroughImgseldCostsNoMoreRoundTripsThanContainerdAlone) {
  REQUIRE_WORLD();
  const absl::Duration delay = absl::Milliseconds(150);
  const std::string& registry_host = world->registry->host();
  const int registry_port = std::stoi(registry_host.substr(registry_host.rfind(':') + 1));
  std::string why;
  auto proxy = RoundTripProxy::Start(registry_port, delay, &why);
  ASSERT_NE(proxy, nullptr) << why;
  const std::string host = absl::StrCat("127.0.0.1:", proxy->port());
  const std::string certs = world->dir + "/rtt-certs";
  ASSERT_TRUE(WriteHostsToml(certs, host, host).ok());
  const std::string ctd_dir = world->dir + "/rtt-containerd";
  fs::create_directories(ctd_dir);
  auto containerd = Containerd::Start(ctd_dir, certs);
  ASSERT_TRUE(containerd.ok()) << containerd.status();
  auto daemon = StartImgseld("rtt", "", {}, certs, true, (*containerd)->socket());
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  auto direct_cri = Cri((*containerd)->socket());

  auto pull_logged = [&](const std::string& socket, const std::string& repo) {
    const size_t before = proxy->requests().size();
    auto ref = Pull(*Cri(socket), absl::StrCat(host, "/", repo, ":v1"));
    EXPECT_TRUE(ref.ok()) << ref.status() << ReadFile(daemon->log);
    std::vector<RoundTripProxy::Request> all = proxy->requests();
    // Removed with every name it has: its content and snapshots go with it.
    grpc::ClientContext ctx;
    runtime::v1::RemoveImageRequest req;
    req.mutable_image()->set_image(absl::StrCat(host, "/", repo, ":v1"));
    runtime::v1::RemoveImageResponse resp;
    grpc::Status removed = direct_cri->RemoveImage(&ctx, req, &resp);
    EXPECT_TRUE(removed.ok()) << removed.error_message();
    return std::vector<RoundTripProxy::Request>(all.begin() + before, all.end());
  };
  auto describe = [](const std::vector<RoundTripProxy::Request>& log) {
    std::string out;
    const absl::Time t0 = log.empty() ? absl::Now() : log.front().arrived;
    for (const auto& r : log) {
      absl::StrAppend(&out, "\n  +", absl::ToInt64Milliseconds(r.arrived - t0), " ms ", r.line);
    }
    return out;
  };
  auto count = [](const std::vector<RoundTripProxy::Request>& log, const std::string& part) {
    return std::count_if(log.begin(), log.end(), [&](const RoundTripProxy::Request& r) {
      return absl::StartsWith(r.line, "GET ") && absl::StrContains(r.line, part);
    });
  };

  const auto direct = pull_logged((*containerd)->socket(), "rtt-direct");
  const auto through = pull_logged(daemon->cri_socket, "rtt-imgseld");
  const int direct_depth = RoundTripProxy::Depth(direct, delay);
  const int through_depth = RoundTripProxy::Depth(through, delay);
  std::cout << "cold pull, sequential round trips (requests): containerd alone " << direct_depth
            << " (" << direct.size() << "), through imgseld " << through_depth << " ("
            << through.size() << ")" << std::endl;
  EXPECT_LE(through_depth, direct_depth)
      << "containerd alone:" << describe(direct) << "\nthrough imgseld:" << describe(through);
  EXPECT_GE(count(direct, "/blobs/"), 2) << "not cold for containerd:" << describe(direct);

  // The chosen manifest and its config were fetched once, by imgseld, and
  // went into containerd's content store within the handover's own
  // deadline (a write that outlives it is logged as a failed handover, and
  // containerd then fetches both itself).
  EXPECT_EQ(count(through, absl::StrCat("/manifests/", kV3)), 1) << describe(through);
  EXPECT_EQ(count(through, absl::StrCat("/blobs/", ConfigDigest(kV3))), 1) << describe(through);
  const std::string line = PullLine(ReadFile(daemon->log), absl::StrCat(host, "/rtt-imgseld:v1"));
  EXPECT_TRUE(absl::StrContains(line, "\"outcome\":\"selected\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"chosen\":\"", kV3, "\""))) << line;
  EXPECT_TRUE(absl::StrContains(line, "\"handed_over\":2")) << line;
  EXPECT_FALSE(absl::StrContains(line, "content handover")) << line;

#ifdef IMGSEL_BINARY
  // An artifact that rules the first-pass choice out: the costlier case,
  // where what was fetched ahead for it is of no use.
  const std::string spec = WriteNeedsKernel7Spec(world->dir + "/rtt-kernel-7.yaml");
  std::string out;
  absl::Status attached =
      RunCommand({IMGSEL_BINARY, "attach", absl::StrCat(registry_host, "/rtt-art@", kV3), spec,
                  "--hosts-dir", world->certs},
                 absl::Seconds(60), &out);
  ASSERT_TRUE(attached.ok()) << attached << out;
  const auto cold = pull_logged(daemon->cri_socket, "rtt-art");
  const auto warm = pull_logged(daemon->cri_socket, "rtt-art");
  const int cold_depth = RoundTripProxy::Depth(cold, delay);
  const int warm_depth = RoundTripProxy::Depth(warm, delay);
  std::cout << "with an artifact, sequential round trips (requests): cold " << cold_depth << " ("
            << cold.size() << "), warm " << warm_depth << " (" << warm.size() << ")" << std::endl;
  // The referrers floor, on docker-registry too, which has no referrers
  // API: the listing (the API's 404 and the tag schema asked at once), the
  // artifact's manifest, its blob.
  EXPECT_LE(cold_depth, direct_depth + 3) << describe(cold);
  EXPECT_TRUE(absl::StrContains(PullLine(ReadFile(daemon->log), absl::StrCat(host, "/rtt-art:v1")),
                                absl::StrCat("\"chosen\":\"", kAvx2, "\"")))
      << ReadFile(daemon->log);
  EXPECT_LE(warm_depth, direct_depth) << describe(warm);
  EXPECT_EQ(count(warm, "/referrers/") + count(warm, "/manifests/sha256-"), 0)
      << "warm artifacts are not asked for again:" << describe(warm);
  EXPECT_GE(count(warm, "/blobs/"), 1) << "not cold for containerd:" << describe(warm);
#endif
}

// SIGTERM while a pull is in flight: the pull still ends well, then imgseld
// exits. The pull is held by a registry that accepts connections and never
// answers, until select_timeout sends it to containerd as sent.
TEST(ImgseldIntegration, TermLetsAPullInFlightFinish) {
  REQUIRE_WORLD();
  SilentRegistry silent("certs-silent.d");
  ASSERT_TRUE(silent.ok());
  auto d = StartImgseld("drain", "select_timeout = \"1500ms\"\n", {}, silent.certs);
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<std::string> ref = absl::UnknownError("not run");
  std::thread kubelet([&] {
    auto cri = Cri(d->cri_socket);
    ref = Pull(*cri, Ref("drain"));
  });
  ASSERT_TRUE(silent.AwaitConnection(absl::Seconds(10))) << ReadFile(d->log);
  const int status = d->process->Signal(SIGTERM, absl::Seconds(10));
  kubelet.join();
  ASSERT_TRUE(ref.ok()) << ref.status() << ReadFile(d->log);
  EXPECT_EQ(*ref, ConfigDigest(kGeneric));  // containerd's own first match
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_TRUE(absl::StrContains(ReadFile(d->log), "\"reason\":\"timeout\"")) << ReadFile(d->log);
}

// A length-delimited protobuf field: tag, length, bytes.
std::string Field(int number, const std::string& bytes) {
  return absl::StrCat(std::string(1, static_cast<char>(number << 3 | 2)),
                      std::string(1, static_cast<char>(bytes.size())), bytes);
}

// The CRI socket is not containerd's socket under another name: what is
// not the CRI image service (or the health check) is UNIMPLEMENTED there
// and never reaches containerd, which would have answered it. The image
// service itself still passes.
TEST(ImgseldIntegration, CriSocketServesTheImageServiceOnly) {
  REQUIRE_WORLD();
  const std::string& proxy = world->main.cri_socket;
  const std::string& containerd = world->containerd->socket();
  // containerd.services.namespaces.v1: Create{namespace{name}}; List
  // answers every namespace's name.
  const std::string name = "imgsel-through-cri";
  grpc::Status create = RawCall(proxy, "/containerd.services.namespaces.v1.Namespaces/Create",
                                Field(1, Field(1, name)));
  EXPECT_EQ(create.error_code(), grpc::StatusCode::UNIMPLEMENTED) << create.error_message();
  std::string namespaces;
  ASSERT_TRUE(
      RawCall(containerd, "/containerd.services.namespaces.v1.Namespaces/List", "", &namespaces)
          .ok());
  EXPECT_FALSE(absl::StrContains(namespaces, name)) << "created through the CRI socket";

  for (const char* method :
       {"/runtime.v1.RuntimeService/Version", "/runtime.v1alpha2.RuntimeService/Version"}) {
    EXPECT_TRUE(RawCall(containerd, method, "").ok()) << method << " directly";
    grpc::Status s = RawCall(proxy, method, "");
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED) << method << s.error_message();
  }
  // Server reflection, which the API socket has, is not served here either.
  grpc::Status reflection =
      RawCall(proxy, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", "\x3a\x00");
  EXPECT_EQ(reflection.error_code(), grpc::StatusCode::UNIMPLEMENTED) << reflection.error_message();

  grpc::health::v1::HealthCheckResponse health;
  std::string health_bytes;
  ASSERT_TRUE(RawCall(proxy, "/grpc.health.v1.Health/Check", "", &health_bytes).ok());
  ASSERT_TRUE(health.ParseFromString(health_bytes));
  EXPECT_EQ(health.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  for (const char* method :
       {"/runtime.v1.ImageService/ListImages", "/runtime.v1alpha2.ImageService/ListImages",
        "/runtime.v1.ImageService/ImageFsInfo"}) {
    grpc::Status s = RawCall(proxy, method, "");
    EXPECT_TRUE(s.ok()) << method << ": " << s.error_message();
  }
}

// Beyond --max-pulls, a pull is forwarded as sent and still ends well; its
// decision line names the image, the status returned and the time it took.
TEST(ImgseldIntegration, PullsBeyondMaxPullsAreForwardedAndLogged) {
  REQUIRE_WORLD();
  SilentRegistry silent("certs-busy.d");
  ASSERT_TRUE(silent.ok());
  // The first pull holds the only slot for select_timeout.
  auto d =
      StartImgseld("busy", "select_timeout = \"1500ms\"\n", {"--max-pulls", "1"}, silent.certs);
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<std::string> held = absl::UnknownError("not run");
  std::thread first([&] {
    auto cri = Cri(d->cri_socket);
    held = Pull(*cri, Ref("busy"));
  });
  ASSERT_TRUE(silent.AwaitConnection(absl::Seconds(10))) << ReadFile(d->log);
  auto cri = Cri(d->cri_socket);
  absl::StatusOr<std::string> busy = Pull(*cri, Ref("busy"));
  first.join();
  ASSERT_TRUE(held.ok()) << held.status() << ReadFile(d->log);
  ASSERT_TRUE(busy.ok()) << busy.status() << ReadFile(d->log);
  EXPECT_EQ(*busy, ConfigDigest(kGeneric));  // containerd's own first match
  std::string busy_line;
  std::istringstream log(ReadFile(d->log));
  for (std::string line; std::getline(log, line);) {
    if (absl::StrContains(line, "\"reason\":\"busy\"")) busy_line = line;
  }
  ASSERT_FALSE(busy_line.empty()) << ReadFile(d->log);
  EXPECT_TRUE(absl::StrContains(busy_line, absl::StrCat("\"image\":\"", Ref("busy"), "\"")))
      << busy_line;
  EXPECT_TRUE(absl::StrContains(busy_line, "\"code\":\"OK\"")) << busy_line;
  EXPECT_FALSE(absl::StrContains(busy_line, "\"total_ms\":0.000")) << busy_line;
}

// A Select by reference answers within its budget (timeout_ms, else
// select_timeout) even when the registry never answers: a fallback answer
// that says why, not a call held for the registry's own timeouts.
TEST(ImgseldIntegration, SelectByReferenceAnswersWithinItsBudget) {
  REQUIRE_WORLD();
  SilentRegistry silent("certs-budget.d");
  ASSERT_TRUE(silent.ok());
  auto d = StartImgseld("budget", "select_timeout = \"700ms\"\n", {}, silent.certs);
  ASSERT_TRUE(d.ok()) << d.status();
  auto api = imgsel::v1::Selector::NewStub(
      grpc::CreateChannel("unix:" + d->api_socket, grpc::InsecureChannelCredentials()));
  struct Case {
    uint32_t timeout_ms;
    const char* budget;
  };
  for (const Case& c : {Case{300, "300ms"}, Case{0, "700ms"}}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    imgsel::v1::SelectRequest req;
    req.set_reference(Ref("demo"));
    req.set_timeout_ms(c.timeout_ms);
    imgsel::v1::SelectResponse resp;
    const absl::Time start = absl::Now();
    grpc::Status s = api->Select(&ctx, req, &resp);
    const absl::Duration took = absl::Now() - start;
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_TRUE(resp.fallback()) << c.budget;
    EXPECT_TRUE(absl::StrContains(resp.fallback_reason(),
                                  absl::StrCat("selection budget of ", c.budget, " ran out")))
        << resp.fallback_reason();
    // The registry's own timeouts here are 2 s to connect and 5 s a request.
    EXPECT_LT(took, absl::Seconds(2)) << c.budget;
  }
}

// imgseld out of descriptors: clients hold more connections to the API
// socket than its RLIMIT_NOFILE allows, so accept() fails with EMFILE. Once
// they let go, the socket accepts again and calls are answered; a listener
// that gave up at the first EMFILE would leave the API dead until restart.
TEST(ImgseldIntegration, ApiSocketAcceptsAgainAfterRunningOutOfDescriptors) {
  REQUIRE_WORLD();
  auto d = StartImgseld("emfile", "", {}, world->certs, /*wait=*/false);
  ASSERT_TRUE(d.ok()) << d.status();
  d->process.reset();  // started below, with a low descriptor limit
  auto p = Process::Spawn(
      {"/bin/sh", "-c", "ulimit -n 128 && exec \"$@\"", "sh", IMGSELD_BINARY, "--config", d->config,
       "--host-profile", absl::StrCat(Examples(), "/hosts/amd64-v3.json")},
      d->log);
  ASSERT_TRUE(p.ok()) << p.status();
  d->process = *std::move(p);
  ASSERT_TRUE(WaitForSocket(d->api_socket, absl::Seconds(15))) << ReadFile(d->log);
  auto host_profile = [&](absl::Duration wait) {
    auto api = imgsel::v1::Selector::NewStub(plugin::UnixChannel(d->api_socket));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + wait));
    imgsel::v1::HostProfileRequest req;
    imgsel::v1::HostProfileResponse resp;
    return api->HostProfile(&ctx, req, &resp);
  };
  ASSERT_TRUE(host_profile(absl::Seconds(10)).ok()) << ReadFile(d->log);

  // More connections than imgseld has descriptors for; they sit in the
  // socket's queue once it cannot accept any more.
  std::vector<int> held;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", d->api_socket.c_str());
  for (int i = 0; i < 200; ++i) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    held.push_back(fd);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0) << i;
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!absl::StrContains(ReadFile(d->log), "Too many open files") && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(absl::StrContains(ReadFile(d->log), "Too many open files")) << ReadFile(d->log);
  for (int fd : held) close(fd);

  grpc::Status again = host_profile(absl::Seconds(10));
  EXPECT_TRUE(again.ok()) << again.error_code() << ": " << again.error_message()
                          << ReadFile(d->log);
}

// A listening Unix socket the test holds, as systemd's imgseld.socket does.
int ListenUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);  // inherited by imgseld
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 64) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// imgseld on the sockets `api_fd` and `cri_fd`, passed the way systemd
// passes them (descriptors 3 and 4, LISTEN_FDS, LISTEN_PID).
absl::StatusOr<std::unique_ptr<Process>> SpawnActivated(const Daemon& d, int api_fd, int cri_fd) {
  const std::string script = absl::StrCat("exec 3<&", api_fd, " 4<&", cri_fd,
                                          "; export LISTEN_FDS=2 LISTEN_PID=$$; exec \"$@\"");
  return Process::Spawn({"/bin/bash", "-c", script, "bash", IMGSELD_BINARY, "--config", d.config,
                         "--host-profile", absl::StrCat(Examples(), "/hosts/amd64-v3.json")},
                        d.log);
}

// Under socket activation, a SIGTERM's drain leaves new connections in the
// socket's queue for the next imgseld, as systemd restarts it, instead of
// taking them into a server that is shutting down: kubelet's calls made
// during an upgrade wait and are answered.
TEST(ImgseldIntegration, SocketActivatedDrainLeavesNewCallsToTheNextImgseld) {
  REQUIRE_WORLD();
  SilentRegistry silent("certs-handover.d");
  ASSERT_TRUE(silent.ok());
  auto d = StartImgseld("handover", "select_timeout = \"1500ms\"\n", {}, silent.certs,
                        /*wait=*/false);
  ASSERT_TRUE(d.ok()) << d.status();
  d->process.reset();  // started below, on sockets the test holds
  const int api_fd = ListenUnix(d->api_socket), cri_fd = ListenUnix(d->cri_socket);
  ASSERT_GE(api_fd, 0);
  ASSERT_GE(cri_fd, 0);
  auto first = SpawnActivated(*d, api_fd, cri_fd);
  ASSERT_TRUE(first.ok()) << first.status();
  auto list = [&](absl::Duration wait) {
    auto cri = Cri(d->cri_socket);  // a connection of its own
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + wait));
    runtime::v1::ListImagesRequest req;
    runtime::v1::ListImagesResponse resp;
    return cri->ListImages(&ctx, req, &resp);
  };
  grpc::Status up = list(absl::Seconds(15));
  ASSERT_TRUE(up.ok()) << up.error_message() << ReadFile(d->log);

  // A pull the silent registry holds for select_timeout keeps the drain
  // going; a new connection arrives during it.
  absl::StatusOr<std::string> ref = absl::UnknownError("not run");
  std::thread kubelet([&] {
    auto cri = Cri(d->cri_socket);
    ref = Pull(*cri, Ref("handover"));
  });
  ASSERT_TRUE(silent.AwaitConnection(absl::Seconds(10))) << ReadFile(d->log);
  kill((*first)->pid(), SIGTERM);
  // Accepting has stopped once the drain is logged.
  ASSERT_TRUE(WaitForFileContaining(d->log, "draining for up to", absl::Seconds(10)))
      << ReadFile(d->log);
  grpc::Status during = grpc::Status(grpc::StatusCode::UNKNOWN, "not run");
  std::thread late([&] { during = list(absl::Seconds(30)); });
  const int status = (*first)->Signal(SIGTERM, absl::Seconds(10));
  ASSERT_NE(status, -1) << "the first imgseld did not stop";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  // The next one, on the same sockets: it takes the call that waited.
  auto second = SpawnActivated(*d, api_fd, cri_fd);
  ASSERT_TRUE(second.ok()) << second.status();
  late.join();
  kubelet.join();
  close(api_fd);
  close(cri_fd);
  EXPECT_TRUE(ref.ok()) << ref.status() << ReadFile(d->log);
  EXPECT_TRUE(during.ok()) << "a call made during the drain: " << during.error_message()
                           << ReadFile(d->log);
}

}  // namespace
}  // namespace imgsel::integration

int main(int argc, char** argv) {
  using imgsel::integration::kConcurrent;
  ::testing::InitGoogleTest(&argc, argv);
  std::vector<std::string> repos = {
      "demo",       "demo-rm",     "fb-unreach", "fb-timeout",  "fb-record", "api",
      "again",      "compat",      "drain",      "alpha",       "handover",  "busy",
      "rtt-direct", "rtt-imgseld", "rtt-art",    "nofit-first", "nofit-fail"};
  for (int i = 0; i < kConcurrent; ++i) repos.push_back(absl::StrCat("many", i));
  ::testing::AddGlobalTestEnvironment(new imgsel::integration::WorldEnvironment(
      {repos, [] {
         return imgsel::integration::PushAll(imgsel::integration::MakeGarbageLayout(),
                                             {"fb-garbage"});
       }}));
  return RUN_ALL_TESTS();
}
