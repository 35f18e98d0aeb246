#include "plugin/node_check.h"

#include <dirent.h>
#include <errno.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "github.com/containerd/containerd/api/services/namespaces/v1/namespace.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "oci/file_read.h"
#include "plugin/upstream.h"
#include "registry/hosts.h"

namespace imgsel::plugin {
namespace {

constexpr int kMaxProcEntries = 1 << 20;
constexpr int kMaxRegistryDirs = 4096;
constexpr size_t kMaxCmdlineBytes = 256 << 10;
constexpr size_t kMaxKubeletConfigBytes = 1 << 20;

CheckLine Ok(std::string name, std::string detail) {
  return {std::move(name), CheckVerdict::kOk, std::move(detail)};
}
CheckLine Problem(std::string name, std::string detail) {
  return {std::move(name), CheckVerdict::kProblem, std::move(detail)};
}
CheckLine Unknown(std::string name, std::string detail) {
  return {std::move(name), CheckVerdict::kUnknown, std::move(detail)};
}

bool SamePath(absl::string_view a, absl::string_view b) {
  return std::filesystem::path(std::string(a)).lexically_normal() ==
         std::filesystem::path(std::string(b)).lexically_normal();
}

// What kubelet was started with, from its process's command line.
struct KubeletFlags {
  bool running = false;
  std::string image_endpoint;  // --image-service-endpoint
  std::string config;          // --config
};

// The value of `--name=V` or `--name V` at args[*i].
bool FlagValue(const std::vector<std::string>& args, size_t* i, absl::string_view name,
               std::string* value) {
  const std::string& a = args[*i];
  const std::string with_eq = absl::StrCat("--", name, "=");
  if (absl::StartsWith(a, with_eq)) {
    *value = a.substr(with_eq.size());
    return true;
  }
  if (a == absl::StrCat("--", name) && *i + 1 < args.size()) {
    *value = args[++*i];
    return true;
  }
  return false;
}

KubeletFlags FindKubelet(const std::string& proc_dir) {
  KubeletFlags out;
  DIR* dir = opendir(proc_dir.c_str());
  if (dir == nullptr) return out;
  int seen = 0;
  while (const dirent* e = readdir(dir)) {
    if (++seen > kMaxProcEntries) break;
    int pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    const std::string base = absl::StrCat(proc_dir, "/", e->d_name);
    auto comm = ReadFileBounded(base + "/comm", 64);
    if (!comm.ok() || absl::StripTrailingAsciiWhitespace(*comm) != "kubelet") continue;
    auto cmdline = ReadFileBounded(base + "/cmdline", kMaxCmdlineBytes);
    if (!cmdline.ok()) continue;
    out.running = true;
    std::vector<std::string> args = absl::StrSplit(*cmdline, '\0', absl::SkipEmpty());
    for (size_t i = 1; i < args.size(); ++i) {
      if (FlagValue(args, &i, "image-service-endpoint", &out.image_endpoint)) continue;
      FlagValue(args, &i, "config", &out.config);
    }
    break;
  }
  closedir(dir);
  return out;
}

// imageServiceEndpoint from a KubeletConfiguration file: the top-level key,
// quoted or not. Empty when the file does not set it.
std::string EndpointFromKubeletConfig(absl::string_view yaml) {
  for (absl::string_view line : absl::StrSplit(yaml, '\n')) {
    if (!absl::ConsumePrefix(&line, "imageServiceEndpoint:")) continue;
    const size_t comment = line.find(" #");
    if (comment != absl::string_view::npos) line = line.substr(0, comment);
    line = absl::StripAsciiWhitespace(line);
    if (line.size() >= 2 && (line.front() == '"' || line.front() == '\'') &&
        line.back() == line.front()) {
      line = line.substr(1, line.size() - 2);
    }
    return std::string(line);
  }
  return "";
}

CheckLine CheckKubelet(const Config& config, const NodeCheckOptions& options) {
  const std::string want = absl::StrCat("unix://", config.server.cri_socket);
  const std::string fix = absl::StrCat(
      "set kubelet's --image-service-endpoint (or "
      "imageServiceEndpoint) to ",
      want, " and restart kubelet (docs/deploy.md, step 3)");
  const KubeletFlags kubelet = FindKubelet(options.proc_dir);
  std::string endpoint = kubelet.image_endpoint;
  std::string from = "kubelet's --image-service-endpoint flag";
  if (endpoint.empty()) {
    const std::string file = kubelet.config.empty() ? options.kubelet_config : kubelet.config;
    auto text = ReadFileBounded(file, kMaxKubeletConfigBytes);
    if (!text.ok()) {
      if (!kubelet.running) {
        return Unknown("kubelet", absl::StrCat("cannot tell: no kubelet process, and ", file,
                                               " cannot be read (", text.status().message(), ")"));
      }
      return Unknown("kubelet",
                     absl::StrCat("cannot tell: kubelet runs without "
                                  "--image-service-endpoint, and its config file ",
                                  file, " cannot be read (", text.status().message(), ")"));
    }
    endpoint = EndpointFromKubeletConfig(*text);
    from = absl::StrCat("imageServiceEndpoint in ", file);
    if (endpoint.empty()) {
      return Problem("kubelet", absl::StrCat("neither kubelet's flags nor ", file,
                                             " set an image service endpoint: image calls go to "
                                             "containerd directly; ",
                                             fix));
    }
  }
  if (!kubelet.running) from += " (kubelet is not running)";
  absl::string_view path = endpoint;
  if (absl::ConsumePrefix(&path, "unix://") && SamePath(path, config.server.cri_socket)) {
    return Ok("kubelet", absl::StrCat("image calls go to ", endpoint, " (", from, ")"));
  }
  return Problem("kubelet", absl::StrCat(from, " is ", endpoint, ", not imgseld's ", want,
                                         ": imgsel is not in kubelet's path; ", fix));
}

// Whether something accepts connections at `path`; the errno when not.
int ConnectError(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return ENAMETOOLONG;
  memcpy(addr.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  const int rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int err = rc == 0 ? 0 : errno;
  close(fd);
  return err;
}

CheckLine CheckImgseldSocket(absl::string_view name, const std::string& path, absl::string_view key,
                             absl::string_view unit, const NodeCheckOptions& options,
                             absl::string_view answered_by) {
  if (const int err = ConnectError(path); err != 0) {
    return Problem(std::string(name),
                   absl::StrCat(path, " ([server] ", key, "): nothing listens (", strerror(err),
                                "); start it: systemctl enable --now ", unit,
                                " imgseld.service, then journalctl -u imgseld"));
  }
  absl::Status health = CheckSocketHealth(path, options.call_timeout);
  if (!health.ok()) {
    return Problem(std::string(name),
                   absl::StrCat(path, ": listening, but a health check failed: ", health.message(),
                                "; see journalctl -u imgseld"));
  }
  return Ok(std::string(name), absl::StrCat(path, ": listening, ", answered_by, " SERVING"));
}

CheckLine CheckContainerd(const Config& config, const NodeCheckOptions& options) {
  const std::string& path = config.server.containerd_socket;
  const std::string fix =
      "set [server] containerd_socket to containerd's socket (containerd's [grpc] address)";
  if (const int err = ConnectError(path); err != 0) {
    return Problem("containerd", absl::StrCat(path,
                                              " ([server] containerd_socket): cannot "
                                              "connect (",
                                              strerror(err), "); is containerd running? or ", fix));
  }
  absl::Status health = CheckSocketHealth(path, options.call_timeout);
  if (!health.ok()) {
    return Problem("containerd", absl::StrCat(path, ": a health check failed: ", health.message(),
                                              "; is it containerd's socket? ", fix));
  }
  // List, not Get: containerd answers Get for any name (with no labels),
  // whether or not the namespace exists.
  auto stub = containerd::services::namespaces::v1::Namespaces::NewStub(UnixChannel(path));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + options.call_timeout));
  containerd::services::namespaces::v1::ListNamespacesRequest req;
  containerd::services::namespaces::v1::ListNamespacesResponse resp;
  const grpc::Status s = stub->List(&ctx, req, &resp);
  bool present = false;
  for (const auto& ns : resp.namespaces()) present = present || ns.name() == config.server.ns;
  if (s.ok() && !present) {
    return Problem(
        "containerd",
        absl::StrCat(path, ": SERVING, but namespace \"", config.server.ns,
                     "\" does not exist: kubelet's images live in \"k8s.io\" "
                     "(containerd's CRI plugin creates it); set [server] namespace to it"));
  }
  if (!s.ok()) {
    return Problem("containerd", absl::StrCat(path, ": SERVING, but namespace \"", config.server.ns,
                                              "\" cannot be looked up: ", s.error_message()));
  }
  return Ok("containerd",
            absl::StrCat(path, ": SERVING, namespace \"", config.server.ns, "\" present"));
}

CheckLine CheckRegistryConfig(const Config& config) {
  const std::string& config_path = config.registry.config_path;
  const std::vector<std::string> roots = registry::HostsDirRoots(config_path);
  if (roots.empty()) {
    return Ok("registry", "[registry] config_path is not set: registries are reached as named");
  }
  // Every registry named under any root, looked up as imgseld looks it up
  // (the first root with its directory wins), so a file shadowed by an
  // earlier root is not what is checked.
  std::vector<std::string> hosts;
  int readable = 0;
  for (const std::string& dir : roots) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) {
      // A directory of the list that does not exist is passed over, as
      // containerd passes it over (its default names /etc/docker/certs.d).
      if (errno == ENOENT && roots.size() > 1) continue;
      return Problem(
          "registry",
          absl::StrCat(dir, " ([registry] config_path): cannot read it (", strerror(errno),
                       "); make it a directory imgseld can read, as containerd's "
                       "config_path, or remove the setting"));
    }
    ++readable;
    int seen = 0;
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      if (++seen > kMaxRegistryDirs) break;
      std::error_code ec;
      if (std::filesystem::is_directory(absl::StrCat(dir, "/", e->d_name), ec)) {
        hosts.emplace_back(e->d_name);
      }
    }
    closedir(d);
  }
  if (readable == 0) {
    return Problem("registry", absl::StrCat(config_path,
                                            " ([registry] config_path): none of its directories "
                                            "exists; create one, or remove the setting"));
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  for (const std::string& host : hosts) {
    // A directory name is host_port_ or host:port; either finds the same directory.
    auto endpoints = registry::EndpointsFor(config_path, host, /*plain_http=*/false);
    if (!endpoints.ok()) {
      return Problem("registry", absl::StrCat(host, ": ", endpoints.status().message(),
                                              "; fix or remove that hosts.toml"));
    }
  }
  return Ok("registry", absl::StrCat(config_path, ": readable, ", hosts.size(),
                                     hosts.size() == 1 ? " registry" : " registries",
                                     " configured, every hosts.toml parses"));
}

}  // namespace

absl::Status CheckSocketHealth(const std::string& path, absl::Duration timeout) {
  auto stub = grpc::health::v1::Health::NewStub(UnixChannel(path));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::health::v1::HealthCheckRequest req;
  grpc::health::v1::HealthCheckResponse resp;
  const grpc::Status s = stub->Check(&ctx, req, &resp);
  if (!s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("gRPC status ", s.error_code(), ": ", s.error_message()));
  }
  if (resp.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat("health status ", resp.status(), ", not SERVING"));
  }
  return absl::OkStatus();
}

std::vector<CheckLine> CheckNode(const Config& config, const NodeCheckOptions& options) {
  std::vector<CheckLine> out;
  out.push_back(CheckKubelet(config, options));
  out.push_back(CheckImgseldSocket("cri socket", config.server.cri_socket, "cri_socket",
                                   "imgseld.socket", options, "containerd through imgseld"));
  out.push_back(CheckImgseldSocket("api socket", config.server.socket, "socket",
                                   "imgseld-api.socket", options, "imgseld"));
  out.push_back(CheckContainerd(config, options));
  out.push_back(CheckRegistryConfig(config));
  return out;
}

std::string FormatCheckLine(const CheckLine& line) {
  const char* verdict = line.verdict == CheckVerdict::kOk        ? "ok     "
                        : line.verdict == CheckVerdict::kProblem ? "problem"
                                                                 : "unknown";
  return absl::StrCat(verdict, " ", line.name, ": ", line.detail);
}

}  // namespace imgsel::plugin
