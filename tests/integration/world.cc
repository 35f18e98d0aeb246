// The world of an imgseld integration suite (world.h).
#include "tests/integration/world.h"

#include <arpa/inet.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "plugin/upstream.h"

#ifndef IMGSEL_EXAMPLES
#error "IMGSEL_EXAMPLES must name the examples directory"
#endif
#ifndef IMGSELD_BINARY
#error "IMGSELD_BINARY must name the imgseld binary"
#endif

namespace imgsel::integration {

namespace fs = std::filesystem;

std::string Examples() { return IMGSEL_EXAMPLES; }

std::string WriteNeedsKernel7Spec(const std::string& path) {
  std::ofstream(path) << "version: v1alpha1\n"
                         "compatibilities:\n"
                         "- description: needs a newer kernel\n"
                         "  rules:\n"
                         "  - name: kernel\n"
                         "    matchFeatures:\n"
                         "    - feature: kernel.version\n"
                         "      matchExpressions:\n"
                         "        major: {op: Ge, value: [\"7\"]}\n";
  return path;
}

std::string Blob(const std::string& digest) {
  return ReadFile(absl::StrCat(Examples(), "/layout/blobs/sha256/", digest.substr(7)));
}

std::string ConfigDigest(const std::string& manifest_digest) {
  const std::string m = Blob(manifest_digest);
  const size_t at = m.find("\"digest\": \"");
  return m.substr(at + 11, 71);
}

World* world = nullptr;

absl::StatusOr<Daemon> StartImgseld(const std::string& name, const std::string& server_toml,
                                    const std::vector<std::string>& extra_flags,
                                    const std::string& certs, bool wait,
                                    const std::string& containerd_socket,
                                    const std::string& host_profile) {
  Daemon d;
  d.dir = absl::StrCat(world->dir, "/", name);
  fs::create_directories(d.dir);
  d.config = d.dir + "/imgsel.toml";
  d.api_socket = d.dir + "/imgsel.sock";
  d.cri_socket = d.dir + "/cri.sock";
  d.log = d.dir + "/imgseld.log";
  d.metrics_port = FreeLoopbackPort();
  std::ofstream(d.config) << "version = 1\n"
                          << "[registry]\nconfig_path = \"" << certs << "\"\n"
                          << "request_timeout = \"5s\"\nconnect_timeout = \"2s\"\n"
                          << "[server]\nsocket = \"" << d.api_socket << "\"\n"
                          << "cri_socket = \"" << d.cri_socket << "\"\n"
                          << "containerd_socket = \""
                          << (containerd_socket.empty() ? world->containerd->socket()
                                                        : containerd_socket)
                          << "\"\n"
                          << "metrics = \"127.0.0.1:" << d.metrics_port << "\"\n"
                          << "drain_timeout = \"3s\"\n"
                          << server_toml;
  const std::string profile =
      host_profile.empty() ? absl::StrCat(Examples(), "/hosts/amd64-v3.json") : host_profile;
  std::vector<std::string> argv = {IMGSELD_BINARY, "--config", d.config, "--host-profile", profile};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  auto p = Process::Spawn(argv, d.log);
  if (!p.ok()) return p.status();
  d.process = *std::move(p);
  // Both sockets: imgseld binds them one after the other.
  if (wait && !(WaitForSocket(d.cri_socket, absl::Seconds(15)) &&
                WaitForSocket(d.api_socket, absl::Seconds(15)))) {
    return absl::UnavailableError(absl::StrCat("imgseld did not come up: ", ReadFile(d.log)));
  }
  return d;
}

absl::Status PushLayout(const std::string& layout, const std::string& tag,
                        const std::string& dest) {
  std::string out;
  absl::Status s = RunCommand(
      {"/usr/bin/skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
       absl::StrCat("oci:", layout, ":", tag), absl::StrCat("docker://", dest)},
      absl::Seconds(60), &out);
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat(s.message(), ": ", out));
  return s;
}

std::vector<std::string> PushAll(const std::string& layout, const std::vector<std::string>& repos) {
  std::vector<std::string> errors;
  std::vector<std::unique_ptr<Process>> procs;
  std::vector<std::string> logs;
  for (const std::string& repo : repos) {
    const std::string log = absl::StrCat(world->dir, "/skopeo-", repo, ".log");
    auto p = Process::Spawn({"/usr/bin/skopeo", "copy", "--all", "--preserve-digests",
                             "--dest-tls-verify=false", absl::StrCat("oci:", layout, ":demo"),
                             absl::StrCat("docker://", world->registry->host(), "/", repo, ":v1")},
                            log);
    if (!p.ok()) {
      errors.push_back(std::string(p.status().message()));
      continue;
    }
    procs.push_back(*std::move(p));
    logs.push_back(log);
  }
  for (size_t i = 0; i < procs.size(); ++i) {
    const int status = procs[i]->Signal(0, absl::Seconds(60));
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      errors.push_back(absl::StrCat("skopeo: ", ReadFile(logs[i])));
    }
  }
  return errors;
}

void WorldEnvironment::SetUp() {
  world = new World();
  std::vector<std::string> needed = {"/usr/bin/containerd", "/usr/bin/skopeo",
                                     "/usr/bin/docker-registry"};
  needed.insert(needed.end(), spec_.prerequisites.begin(), spec_.prerequisites.end());
  world->skip = MissingPrerequisite(needed);
  if (!world->skip.empty()) return;
  char tmpl[] = "/tmp/imgseld-it-XXXXXX";
  world->dir = mkdtemp(tmpl);
  std::string why;
  world->registry = registry::testing::RealRegistry::Start(&why);
  if (world->registry == nullptr) {
    world->skip = why;
    return;
  }
  world->certs = world->dir + "/certs.d";
  const std::string host = world->registry->host();
  if (absl::Status s = WriteHostsToml(world->certs, host, host); !s.ok()) {
    world->skip = absl::StrCat("hosts.toml: ", s.message());
    return;
  }
  std::string sandbox_image;
  if (spec_.pause_image) {
    const std::string pause = world->dir + "/pause";
    sandbox_image = host + "/pause:1";
    std::string out;
    absl::Status s =
        RunCommand({"/usr/bin/python3", absl::StrCat(IMGSEL_TESTS, "/integration/pause_image.py"),
                    "--out", pause},
                   absl::Seconds(60), &out);
    if (s.ok()) s = PushLayout(pause, "pause", sandbox_image);
    if (!s.ok()) {
      world->skip = absl::StrCat("pause image: ", s.message(), out);
      return;
    }
  }
  auto c = Containerd::Start(world->dir, world->certs, sandbox_image);
  if (!c.ok()) {
    world->skip = std::string(c.status().message());
    return;
  }
  world->containerd = *std::move(c);
  std::vector<std::string> errors = PushAll(absl::StrCat(Examples(), "/layout"), spec_.repos);
  if (spec_.more_pushes) {
    for (const std::string& e : spec_.more_pushes()) errors.push_back(e);
  }
  if (!errors.empty()) {
    world->skip = absl::StrCat("push failed: ", errors.front());
    return;
  }
  auto d = StartImgseld("main", spec_.main_config, {}, world->certs);
  if (!d.ok()) {
    world->skip = std::string(d.status().message());
    return;
  }
  world->main = *std::move(d);
}

void WorldEnvironment::TearDown() {
  if (world == nullptr) return;
  world->main.process.reset();
  world->containerd.reset();
  world->registry.reset();
  if (!world->dir.empty() && !::testing::Test::HasFailure()) {
    // Unmount nothing: the native snapshotter leaves plain directories.
    std::error_code ec;
    fs::remove_all(world->dir, ec);
  }
  delete world;
  world = nullptr;
}

std::unique_ptr<runtime::v1::ImageService::Stub> Cri(const std::string& socket) {
  return runtime::v1::ImageService::NewStub(plugin::UnixChannel(socket));
}

absl::StatusOr<std::string> Pull(runtime::v1::ImageService::Stub& cri, const std::string& image) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  runtime::v1::PullImageResponse resp;
  grpc::Status s = cri.PullImage(&ctx, req, &resp);
  if (!s.ok()) return absl::UnknownError(s.error_message());
  return resp.image_ref();
}

std::string PullLine(const std::string& log, const std::string& image) {
  std::string found;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    if (absl::StrContains(line, "\"msg\":\"pull\"") &&
        absl::StrContains(line, absl::StrCat("\"image\":\"", image, "\""))) {
      found = std::string(line);
    }
  }
  return found;
}

std::optional<runtime::v1::Image> Status(runtime::v1::ImageService::Stub& cri,
                                         const std::string& image) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  runtime::v1::ImageStatusRequest req;
  req.mutable_image()->set_image(image);
  runtime::v1::ImageStatusResponse resp;
  if (!cri.ImageStatus(&ctx, req, &resp).ok() || !resp.has_image()) return std::nullopt;
  return resp.image();
}

grpc::Status RawCall(const std::string& socket, const std::string& method,
                     const std::string& request, std::string* response, absl::Duration timeout) {
  grpc::GenericStub stub(plugin::UnixChannel(socket));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::ByteBuffer req = plugin::ToByteBuffer(request);
  grpc::ByteBuffer resp;
  grpc::Status status;
  absl::Notification done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  done.WaitForNotification();
  if (response != nullptr) *response = plugin::FromByteBuffer(resp);
  return status;
}

grpc::Status CallAs(const std::string& socket, const std::string& method,
                    const google::protobuf::Message& request, google::protobuf::Message* response) {
  std::string answer;
  grpc::Status status =
      RawCall(socket, method, request.SerializeAsString(), &answer, absl::Seconds(60));
  if (status.ok() && !response->ParseFromString(answer)) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "answer does not parse");
  }
  return status;
}

std::string Ref(const std::string& repo) {
  return absl::StrCat(world->registry->host(), "/", repo, ":v1");
}

std::string Metrics(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
    (void)!write(fd, req.data(), req.size());
    char buf[4096];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

SilentRegistry::SilentRegistry(const std::string& name) {
  fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 16) != 0 || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return;
  }
  certs = world->dir + "/" + name;
  written = WriteHostsToml(certs, world->registry->host(),
                           absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)))
                .ok();
}

SilentRegistry::~SilentRegistry() {
  if (fd >= 0) close(fd);
}

bool SilentRegistry::AwaitConnection(absl::Duration timeout) const {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) == 1;
}

}  // namespace imgsel::integration
