// `imgseld --check`: the chain a pull takes on a live node, link by link,
// so an operator sees which one is broken and what to do about it:
//
//   check        looks at                                         ok when
//   kubelet      kubelet's --image-service-endpoint flag (from     it is unix://[server] cri_socket
//                its running process), else imageServiceEndpoint
//                in its --config file (/var/lib/kubelet/
//                config.yaml by default)
//   cri socket   [server] cri_socket: connects, then a health      containerd answers through
//   imgseld
//                check, which the proxy forwards to containerd
//   api socket   [server] socket: connects, then a health check    imgseld answers SERVING
//   containerd   [server] containerd_socket: a health check        SERVING, and the namespace
//   exists
//                and the [server] namespace ("k8s.io")
//   registry     [registry] config_path: each directory of the     every hosts.toml reads and
//   parses
//                list (one missing is passed over, as containerd
//                does), and each registry's hosts.toml read and
//                parsed as imgseld reads them
//
// Each check ends as ok, problem (with what to do) or unknown (it cannot
// tell, and says why: no kubelet process and no config file, say). Every
// call has a deadline and every directory walk a bound.
//
// Thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "config/config.h"

namespace imgsel::plugin {

enum class CheckVerdict { kOk, kProblem, kUnknown };

struct CheckLine {
  std::string name;  // "kubelet", "cri socket", ...
  CheckVerdict verdict = CheckVerdict::kOk;
  std::string detail;  // what was found; for a problem, also what to do
};

struct NodeCheckOptions {
  std::string proc_dir = "/proc";  // where kubelet's process is looked for
  std::string kubelet_config = "/var/lib/kubelet/config.yaml";  // when its flags name none
  absl::Duration call_timeout = absl::Seconds(3);
};

std::vector<CheckLine> CheckNode(const Config& config, const NodeCheckOptions& options);

// "ok      kubelet: ...", one line; problems and unknowns in the same shape.
std::string FormatCheckLine(const CheckLine& line);

// A grpc.health.v1 Check on the Unix socket `path`: OK when it answers
// SERVING; otherwise what went wrong (nothing listening, an error, another
// status).
absl::Status CheckSocketHealth(const std::string& path, absl::Duration timeout);

}  // namespace imgsel::plugin
