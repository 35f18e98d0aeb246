// The world an imgseld integration suite runs in, and the calls its tests
// make: a real docker-registry on loopback with the example layout pushed
// under the suite's repository names, a real containerd resolving it
// through a certs.d tree, an imgseld ("main") between them, and helpers to
// start more imgselds, play kubelet over the CRI socket and read logs and
// metrics. One world per test binary, set up by WorldEnvironment.
//
// The example layout's index (examples/layout, tag demo) has a generic
// amd64 entry first and an x86-64-v3 entry second; each image's layer holds
// /imgsel-variant naming its entry. imgseld runs with the saved x86-64-v3
// host profile, so its choice (kV3) differs from containerd's first match
// (kGeneric).
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/runtime/v1/api.grpc.pb.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/status.h"
#include "tests/integration/harness.h"
#include "tests/registry/real_registry.h"

namespace imgsel::integration {

// The example layout's entries and index.
inline constexpr char kGeneric[] =
    "sha256:66bf5a58e3ac6da830dcb19340f4b451c5808304a4b952e32269882c96343f39";
inline constexpr char kV3[] =
    "sha256:7619113e33a90ff18f06dfd58cb1490aabc3bb79ad82ba67b3838dbe7d01fe40";
inline constexpr char kAvx2[] =
    "sha256:fe742936e29f86b9dee1f0e0c2b15a35479eecd7aa5e96b6e2eb76304961bcb4";
inline constexpr char kIndex[] =
    "sha256:25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7";

std::string Examples();

// A compatibility spec (NFD format) no host here passes: kernel 7 or later.
// Written to `path`; returns it.
std::string WriteNeedsKernel7Spec(const std::string& path);

// A blob of the example layout.
std::string Blob(const std::string& digest);

// The config digest of a manifest in the layout: CRI's image id.
std::string ConfigDigest(const std::string& manifest_digest);

// One imgseld with its own sockets and config.
struct Daemon {
  std::unique_ptr<Process> process;
  std::string dir;
  std::string config;
  std::string api_socket;
  std::string cri_socket;
  std::string log;
  int metrics_port = 0;
};

struct World {
  std::string skip;  // why the suite cannot run here
  std::string dir;
  std::unique_ptr<registry::testing::RealRegistry> registry;
  std::unique_ptr<Containerd> containerd;
  std::string certs;  // shared by containerd and imgseld
  Daemon main;
};

// The world of this test binary, set up by WorldEnvironment.
extern World* world;

// Starts an imgseld under world->dir/`name`. `server_toml` adds lines to
// the [server] table; `certs` is its registry config_path;
// `containerd_socket`: the world's containerd when empty; `host_profile`:
// the x86-64-v3 example when empty. With `wait`, returns once both sockets
// accept.
absl::StatusOr<Daemon> StartImgseld(const std::string& name, const std::string& server_toml,
                                    const std::vector<std::string>& extra_flags,
                                    const std::string& certs, bool wait = true,
                                    const std::string& containerd_socket = "",
                                    const std::string& host_profile = "");

// Pushes `tag` of the OCI layout `layout` to `dest` (host/repo:tag) with
// skopeo, every manifest and digest as it is.
absl::Status PushLayout(const std::string& layout, const std::string& tag, const std::string& dest);

// Pushes the layout's "demo" index as <registry>/<repo>:v1 for each repo,
// in parallel; returns the errors.
std::vector<std::string> PushAll(const std::string& layout, const std::vector<std::string>& repos);

// What a suite's world holds: the repositories the example layout is
// pushed as, and further pushes of its own (run once the registry is up;
// they return their errors).
struct WorldSpec {
  std::vector<std::string> repos;
  std::function<std::vector<std::string>()> more_pushes;
  // Programs the suite needs beyond containerd, skopeo and docker-registry
  // (a missing one skips the suite; under IMGSEL_REQUIRE_INTEGRATION it
  // fails it).
  std::vector<std::string> prerequisites = {};
  // Build the pause image (pause_image.py, from busybox-static), push it
  // as <registry>/pause:1 and give it to containerd as its sandbox image,
  // so RunPodSandbox works without the internet.
  bool pause_image = false;
  // Lines added to the main imgseld's config after its [server] table
  // (StartImgseld's `server_toml`): more [server] keys, then other tables.
  std::string main_config = {};
};

class WorldEnvironment : public ::testing::Environment {
 public:
  explicit WorldEnvironment(WorldSpec spec) : spec_(std::move(spec)) {}
  void SetUp() override;
  void TearDown() override;

 private:
  WorldSpec spec_;
};

std::unique_ptr<runtime::v1::ImageService::Stub> Cri(const std::string& socket);

// A PullImage of `image` (60 s deadline); the image ref containerd answered.
absl::StatusOr<std::string> Pull(runtime::v1::ImageService::Stub& cri, const std::string& image);

// The decision line imgseld logged for a pull of `image` (the last one).
std::string PullLine(const std::string& log, const std::string& image);

std::optional<runtime::v1::Image> Status(runtime::v1::ImageService::Stub& cri,
                                         const std::string& image);

// A unary call of `method` with `request` as its bytes.
grpc::Status RawCall(const std::string& socket, const std::string& method,
                     const std::string& request, std::string* response = nullptr,
                     absl::Duration timeout = absl::Seconds(30));

// A unary call under another package name: runtime.v1alpha2 messages are
// wire-identical to runtime.v1's, so v1 messages are sent and read.
grpc::Status CallAs(const std::string& socket, const std::string& method,
                    const google::protobuf::Message& request, google::protobuf::Message* response);

// <registry>/<repo>:v1
std::string Ref(const std::string& repo);

// The body of GET /metrics on 127.0.0.1:`port`.
std::string Metrics(int port);

// A registry that accepts connections and never answers, on loopback, and
// a certs.d tree (`certs`, under the world's directory) that sends imgseld
// there for the world's registry; containerd keeps the real one.
struct SilentRegistry {
  explicit SilentRegistry(const std::string& name);
  ~SilentRegistry();
  SilentRegistry(const SilentRegistry&) = delete;
  SilentRegistry& operator=(const SilentRegistry&) = delete;
  bool ok() const { return written; }
  // Waits until a client (imgseld) has connected: the pull is then held
  // here, which the tests need before they act on the daemon.
  bool AwaitConnection(absl::Duration timeout) const;
  int fd = -1;
  bool written = false;
  std::string certs;
};

// Outside CI a machine without root or the tools skips the suite; with
// IMGSEL_REQUIRE_INTEGRATION set (.ci/run sets it) that is a failure.
#define REQUIRE_WORLD()                                                         \
  if (!world->skip.empty()) {                                                   \
    if (getenv("IMGSEL_REQUIRE_INTEGRATION") != nullptr) FAIL() << world->skip; \
    GTEST_SKIP() << world->skip;                                                \
  }

}  // namespace imgsel::integration
