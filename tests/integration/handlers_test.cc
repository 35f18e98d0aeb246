// Runtime handlers on a default cluster, against the real things: Debian's
// containerd with two runc handlers (`runc`, the default, and `runc-b`), a
// pause image built from busybox-static and pushed to docker-registry on
// loopback, and imgseld between them. This test plays kubelet without the
// RuntimeClassInImageCriApi gate (and, where said, with it): RunPodSandbox
// (host network), ImageStatus, PullImage with the sandbox config,
// CreateContainer, then StopPodSandbox and RemovePodSandbox.
//
// imgsel.toml gives runc-b rules of its own (prefer com.example.gpu=nvidia
// by +100): on the saved x86-64-v3 profile the default handler's best
// entry is amd64-v3, runc-b's the GPU build.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cri/runtime/v1/api.grpc.pb.h"
#include "plugin/sandbox_handlers.h"
#include "plugin/upstream.h"
#include "tests/integration/harness.h"
#include "tests/integration/world.h"

namespace imgsel::integration {
namespace {

namespace fs = std::filesystem;

// The config digest (CRI's image id) of the amd64-v3 entry: the default
// handler's choice on the x86-64-v3 profile.
constexpr char kV3Config[] =
    "sha256:9154b0e07b49371b7db1f07d69d18f92c809177077ed303293f882dd651d047b";

constexpr char kGpu[] = "sha256:403175b6791cfcac3e13743bd8019b57c843a32df0f8472fb2837c260a74ac6f";

std::string Ref() { return world->registry->host() + "/app:v1"; }

grpc::ClientContext* Bounded(grpc::ClientContext* ctx, absl::Duration d = absl::Seconds(60)) {
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
  return ctx;
}

// kubelet's sandbox config for a pod: metadata, its labels, host network.
runtime::v1::PodSandboxConfig PodConfig(const std::string& name, const std::string& uid) {
  runtime::v1::PodSandboxConfig c;
  c.mutable_metadata()->set_name(name);
  c.mutable_metadata()->set_uid(uid);
  c.mutable_metadata()->set_namespace_("imgsel-test");
  c.mutable_metadata()->set_attempt(0);
  // No hostname: a sandbox on the node's network shares its UTS namespace.
  c.set_log_directory(absl::StrCat(world->dir, "/pods/", uid));
  (*c.mutable_labels())["io.kubernetes.pod.name"] = name;
  (*c.mutable_labels())["io.kubernetes.pod.namespace"] = "imgsel-test";
  (*c.mutable_labels())[plugin::kPodUidLabel] = uid;
  auto* ns = c.mutable_linux()->mutable_security_context()->mutable_namespace_options();
  ns->set_network(runtime::v1::NODE);
  return c;
}

// A pod sandbox removed when the test ends, by its id.
class Pod {
 public:
  Pod(runtime::v1::RuntimeService::Stub* rt, runtime::v1::PodSandboxConfig config,
      const std::string& handler)
      : rt_(rt), config_(std::move(config)) {
    grpc::ClientContext ctx;
    runtime::v1::RunPodSandboxRequest req;
    *req.mutable_config() = config_;
    req.set_runtime_handler(handler);
    runtime::v1::RunPodSandboxResponse resp;
    status_ = rt_->RunPodSandbox(Bounded(&ctx, absl::Seconds(120)), req, &resp);
    id_ = resp.pod_sandbox_id();
  }
  ~Pod() {
    if (id_.empty()) return;
    grpc::ClientContext stop_ctx;
    runtime::v1::StopPodSandboxRequest stop;
    stop.set_pod_sandbox_id(id_);
    runtime::v1::StopPodSandboxResponse stopped;
    grpc::Status s = rt_->StopPodSandbox(Bounded(&stop_ctx), stop, &stopped);
    EXPECT_TRUE(s.ok()) << "StopPodSandbox: " << s.error_message();
    grpc::ClientContext rm_ctx;
    runtime::v1::RemovePodSandboxRequest rm;
    rm.set_pod_sandbox_id(id_);
    runtime::v1::RemovePodSandboxResponse removed;
    s = rt_->RemovePodSandbox(Bounded(&rm_ctx), rm, &removed);
    EXPECT_TRUE(s.ok()) << "RemovePodSandbox: " << s.error_message();
  }
  const grpc::Status& status() const { return status_; }
  const std::string& id() const { return id_; }
  const runtime::v1::PodSandboxConfig& config() const { return config_; }

 private:
  runtime::v1::RuntimeService::Stub* rt_;
  runtime::v1::PodSandboxConfig config_;
  grpc::Status status_;
  std::string id_;
};

// RunPodSandbox needs runc to start the pause container; on machines where
// it cannot (docs/deploy.md says why it could not on the machines this was
// built on, and what the harness sets for it) the sandbox tests skip with
// runc's own message, and the lookup is still tested against containerd's
// real (empty) ListPodSandbox below.
#define REQUIRE_SANDBOX(pod)                                                \
  if (!(pod).status().ok()) {                                               \
    if (absl::StrContains((pod).status().error_message(), "OCI runtime")) { \
      GTEST_SKIP() << "RunPodSandbox: " << (pod).status().error_message();  \
    }                                                                       \
    FAIL() << "RunPodSandbox: " << (pod).status().error_message();          \
  }

// ImageStatus through imgseld; "" when not present. `handler` is what a
// kubelet with the gate puts in ImageSpec.runtime_handler.
std::string StatusId(runtime::v1::ImageService::Stub& cri, const std::string& handler) {
  grpc::ClientContext ctx;
  runtime::v1::ImageStatusRequest req;
  req.mutable_image()->set_image(Ref());
  req.mutable_image()->set_runtime_handler(handler);
  runtime::v1::ImageStatusResponse resp;
  grpc::Status s = cri.ImageStatus(Bounded(&ctx), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return resp.has_image() ? resp.image().id() : "";
}

// PullImage through imgseld with the pod's sandbox config, as kubelet sends it.
std::string PullFor(runtime::v1::ImageService::Stub& cri, const Pod& pod,
                    const std::string& spec_handler = "") {
  grpc::ClientContext ctx;
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(Ref());
  req.mutable_image()->set_runtime_handler(spec_handler);
  *req.mutable_sandbox_config() = pod.config();
  runtime::v1::PullImageResponse resp;
  grpc::Status s = cri.PullImage(Bounded(&ctx), req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message() << ReadFile(world->main.log);
  return resp.image_ref();
}

// The last decision line imgseld wrote.
std::string LastPullLine() {
  const std::string log = ReadFile(world->main.log);
  const size_t at = log.rfind("\"msg\":\"pull\"");
  if (at == std::string::npos) return "";
  const size_t start = log.rfind('\n', at);
  const size_t end = log.find('\n', at);
  return log.substr(start == std::string::npos ? 0 : start + 1, end - start);
}

TEST(ImgseldHandlers, EachHandlersPodGetsItsOwnChoiceAndTheTagStaysTheDefaults) {
  REQUIRE_WORLD();
  auto channel = plugin::UnixChannel(world->containerd->socket());
  auto rt = runtime::v1::RuntimeService::NewStub(channel);
  auto cri = runtime::v1::ImageService::NewStub(plugin::UnixChannel(world->main.cri_socket));

  Pod a(rt.get(), PodConfig("pod-a", "uid-a"), "");
  Pod b(rt.get(), PodConfig("pod-b", "uid-b"), "runc-b");
  REQUIRE_SANDBOX(a);
  REQUIRE_SANDBOX(b);

  // Pod a (default handler), IfNotPresent: not there, pulled, the tag's record.
  EXPECT_EQ(StatusId(*cri, ""), "");
  EXPECT_EQ(PullFor(*cri, a), kV3Config);
  std::string line = LastPullLine();
  EXPECT_TRUE(absl::StrContains(line, "\"handler\":\"\",\"handler_source\":\"sandbox\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"record\":\"", Ref(), "\""))) << line;

  // Pod b (runc-b). Without the gate kubelet asks ImageStatus(tag) with no
  // handler and finds the default's choice: IfNotPresent runs it (the
  // limit docs/deploy.md states). With the gate, runc-b has no record
  // yet: "not present", so kubelet pulls.
  EXPECT_EQ(StatusId(*cri, ""), kV3Config);
  EXPECT_EQ(StatusId(*cri, "runc-b"), "");
  // The pull (Always without the gate, or IfNotPresent with it): the
  // handler comes from b's sandbox, and kubelet creates the container from
  // the image_ref this answers.
  const std::string gpu = ConfigDigest(kGpu);
  EXPECT_EQ(PullFor(*cri, b), gpu);
  line = LastPullLine();
  EXPECT_TRUE(absl::StrContains(line, "\"handler\":\"runc-b\",\"handler_source\":\"sandbox\""))
      << line;
  EXPECT_TRUE(absl::StrContains(line, absl::StrCat("\"record\":\"", Ref(), ".imgsel.runc-b\"")))
      << line;
  // The tag is still the default's; runc-b's own answer is its choice
  // (IfNotPresent and Never with the gate).
  EXPECT_EQ(StatusId(*cri, ""), kV3Config);
  EXPECT_EQ(StatusId(*cri, "runc-b"), gpu);
  EXPECT_EQ(StatusId(*cri, "runc"), kV3Config) << "a handler without rules is the default";
  // With the gate the handler comes from the ImageSpec, the same choice.
  EXPECT_EQ(PullFor(*cri, b, "runc-b"), gpu);
  EXPECT_TRUE(absl::StrContains(LastPullLine(), "\"handler_source\":\"image_spec\""));
  // And pod a pulling again (Always) still gets the default's.
  EXPECT_EQ(PullFor(*cri, a), kV3Config);

  // kubelet's next step: CreateContainer from the image_ref, in b's sandbox
  // under runc-b. (Not started: the example images hold no program.)
  grpc::ClientContext ctx;
  runtime::v1::CreateContainerRequest create;
  create.set_pod_sandbox_id(b.id());
  create.mutable_config()->mutable_metadata()->set_name("app");
  create.mutable_config()->mutable_image()->set_image(gpu);
  create.mutable_config()->add_command("/imgsel-variant");
  create.mutable_config()->set_log_path("app/0.log");
  *create.mutable_sandbox_config() = b.config();
  runtime::v1::CreateContainerResponse created;
  grpc::Status s = rt->CreateContainer(Bounded(&ctx), create, &created);
  ASSERT_TRUE(s.ok()) << "CreateContainer: " << s.error_message();
  grpc::ClientContext rm_ctx;
  runtime::v1::RemoveContainerRequest rm;
  rm.set_container_id(created.container_id());
  runtime::v1::RemoveContainerResponse removed;
  EXPECT_TRUE(rt->RemoveContainer(Bounded(&rm_ctx), rm, &removed).ok());
}

// What the sandbox lookup costs a pull: the same call imgseld makes,
// against containerd's real ListPodSandbox with a few pods on it.
TEST(ImgseldHandlers, SandboxLookupAgainstContainerd) {
  REQUIRE_WORLD();
  auto channel = plugin::UnixChannel(world->containerd->socket());
  auto rt = runtime::v1::RuntimeService::NewStub(channel);
  Pod a(rt.get(), PodConfig("pod-c", "uid-c"), "runc-b");
  Pod b(rt.get(), PodConfig("pod-d", "uid-d"), "");
  REQUIRE_SANDBOX(a);
  REQUIRE_SANDBOX(b);
  plugin::CriSandboxHandlers lookup(channel);
  auto deadline = [] { return absl::Now() + absl::Seconds(5); };
  auto got = lookup.HandlerOf({"pod-c", "uid-c", "imgsel-test", 0}, deadline());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "runc-b");
  got = lookup.HandlerOf({"pod-d", "uid-d", "imgsel-test", 0}, deadline());
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "");
  EXPECT_EQ(lookup.HandlerOf({"pod-c", "uid-c", "imgsel-test", 1}, deadline()).status().code(),
            absl::StatusCode::kNotFound);

  constexpr int kRounds = 200;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(lookup.HandlerOf({"pod-c", "uid-c", "imgsel-test", 0}, deadline()).ok());
  }
  const absl::Duration each = (absl::Now() - start) / kRounds;
  std::cout << "sandbox lookup (ListPodSandbox by uid, containerd "
            << "with 2 READY sandboxes): " << absl::ToDoubleMicroseconds(each)
            << " us per pull, mean of " << kRounds << std::endl;
}

// With the gate (ImageSpec.runtime_handler set), no sandbox is needed:
// runc-b's pull gets its own record, the tag stays the default's, and
// ImageStatus answers per handler. Runs in the order kubelet calls.
TEST(ImgseldHandlers, WithTheGateTheImageSpecHandlerGetsItsOwnRecord) {
  REQUIRE_WORLD();
  auto cri = runtime::v1::ImageService::NewStub(plugin::UnixChannel(world->main.cri_socket));
  const std::string ref = world->registry->host() + "/gate:v1";
  ASSERT_TRUE(PushLayout(std::string(IMGSEL_EXAMPLES) + "/layout", "demo", ref).ok());
  auto status = [&](const std::string& handler) {
    grpc::ClientContext ctx;
    runtime::v1::ImageStatusRequest req;
    req.mutable_image()->set_image(ref);
    req.mutable_image()->set_runtime_handler(handler);
    runtime::v1::ImageStatusResponse resp;
    EXPECT_TRUE(cri->ImageStatus(Bounded(&ctx), req, &resp).ok());
    return resp.has_image() ? resp.image().id() : "";
  };
  auto pull = [&](const std::string& handler) {
    grpc::ClientContext ctx;
    runtime::v1::PullImageRequest req;
    req.mutable_image()->set_image(ref);
    req.mutable_image()->set_runtime_handler(handler);
    runtime::v1::PullImageResponse resp;
    grpc::Status s = cri->PullImage(Bounded(&ctx), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message() << ReadFile(world->main.log);
    return resp.image_ref();
  };
  const std::string gpu = ConfigDigest(kGpu);
  // runc-b first (IfNotPresent): not present, pulled, its own record only.
  EXPECT_EQ(status("runc-b"), "");
  EXPECT_EQ(pull("runc-b"), gpu);
  EXPECT_TRUE(absl::StrContains(LastPullLine(), "\"handler_source\":\"image_spec\""));
  EXPECT_EQ(status("runc-b"), gpu);
  EXPECT_EQ(status(""), "") << "runc-b's pull wrote nothing under the tag";
  // Then a default pod (IfNotPresent): not present, pulled, the tag.
  EXPECT_EQ(pull(""), kV3Config);
  EXPECT_EQ(status(""), kV3Config);
  EXPECT_EQ(status("runc-b"), gpu) << "the default's pull left runc-b's record alone";
  EXPECT_EQ(status("runc"), kV3Config) << "a handler without rules is the default";
}

// The sandbox lookup against containerd's real ListPodSandbox when the pod
// has no READY sandbox there (here: none could be created, or a pull from
// outside kubelet): the pull goes on under the default handler and the
// decision line says why. Also what the lookup costs.
TEST(ImgseldHandlers, NoSandboxMeansTheDefaultHandlerAndThePullGoesOn) {
  REQUIRE_WORLD();
  auto channel = plugin::UnixChannel(world->containerd->socket());
  plugin::CriSandboxHandlers lookup(channel);
  auto none =
      lookup.HandlerOf({"pod-x", "uid-x", "imgsel-test", 0}, absl::Now() + absl::Seconds(5));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound) << none.status();

  auto cri = runtime::v1::ImageService::NewStub(plugin::UnixChannel(world->main.cri_socket));
  const std::string ref = world->registry->host() + "/nosandbox:v1";
  ASSERT_TRUE(PushLayout(std::string(IMGSEL_EXAMPLES) + "/layout", "demo", ref).ok());
  grpc::ClientContext ctx;
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(ref);
  *req.mutable_sandbox_config() = PodConfig("pod-x", "uid-x");
  runtime::v1::PullImageResponse resp;
  grpc::Status s = cri->PullImage(Bounded(&ctx), req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.image_ref(), kV3Config);
  const std::string line = LastPullLine();
  EXPECT_TRUE(absl::StrContains(line, "\"handler_source\":\"default\"")) << line;
  EXPECT_TRUE(absl::StrContains(line, "no READY sandbox of pod imgsel-test/pod-x")) << line;

  constexpr int kRounds = 200;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kRounds; ++i) {
    lookup.HandlerOf({"pod-x", "uid-x", "imgsel-test", 0}, absl::Now() + absl::Seconds(5))
        .IgnoreError();
  }
  std::cout << "sandbox lookup (ListPodSandbox by uid, real containerd, no match): "
            << absl::ToDoubleMicroseconds((absl::Now() - start) / kRounds)
            << " us per pull, mean of " << kRounds << std::endl;
}

}  // namespace
}  // namespace imgsel::integration

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  imgsel::integration::WorldSpec spec;
  spec.repos = {"app"};
  spec.prerequisites = {"/usr/sbin/runc", "/bin/busybox"};
  spec.pause_image = true;
  spec.main_config =
      "[handlers.runc-b]\n[[handlers.runc-b.prefer]]\n"
      "annotation = \"com.example.gpu\"\nvalue = \"nvidia\"\nweight = 100\n";
  ::testing::AddGlobalTestEnvironment(new imgsel::integration::WorldEnvironment(spec));
  return RUN_ALL_TESTS();
}
