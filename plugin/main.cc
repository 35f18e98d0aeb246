// imgseld: the Selector API and the CRI image-service proxy (DESIGN.md "How
// containerd is reached").
//
//   imgseld --config /etc/imgsel/imgsel.toml [--host-profile FILE]
//   imgseld --config /etc/imgsel/imgsel.toml --check-config
//   imgseld --config /etc/imgsel/imgsel.toml --check     # the node's chain
//   imgseld --check-health /run/imgsel/imgsel.sock       # SERVING, or exit 1
//
// This file: the flags and the one-shot commands. The daemon itself -
// start, reload on SIGHUP, drain on SIGTERM or SIGINT - is plugin/daemon.h.
#include <malloc.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "config/config.h"
#include "plugin/daemon.h"
#include "plugin/node_check.h"
#include "plugin/sockets.h"

namespace imgsel::plugin {
namespace {

struct Flags {
  std::string config;
  bool check_config = false;
  bool check_node = false;
  std::string check_health;
  std::string host_profile;
  std::string inject_fault;
  int max_pulls = 64;
};

// `--check`: one line for the config, then one for each link of the chain
// (plugin/node_check.h); 1 when any is a problem.
int CheckNodeCommand(const Flags& flags) {
  auto config = LoadConfigOrDefault(flags.config);
  if (!config.ok()) {
    std::cout << "problem config: " << config.status().message() << std::endl;
    return 1;
  }
  std::cout << "ok      config: " << config->source << std::endl;
  bool problem = false;
  for (const CheckLine& line : CheckNode(*config, NodeCheckOptions())) {
    std::cout << FormatCheckLine(line) << std::endl;
    problem = problem || line.verdict == CheckVerdict::kProblem;
  }
  return problem ? 1 : 0;
}

int Run(const Flags& flags) {
  if (!flags.check_health.empty()) {
    const absl::Status health = CheckSocketHealth(flags.check_health, absl::Seconds(5));
    if (!health.ok()) {
      std::cerr << flags.check_health << ": " << health.message() << std::endl;
      return 1;
    }
    std::cout << flags.check_health << ": SERVING" << std::endl;
    return 0;
  }
  if (flags.check_node) return CheckNodeCommand(flags);
  if (flags.check_config) {  // a command a person runs: plain text, not log lines
    auto config = LoadConfigOrDefault(flags.config);
    if (!config.ok()) {
      std::cerr << config.status().message() << std::endl;
      return 1;
    }
    std::cout << config->source << ": ok" << std::endl;
    return 0;
  }
  DaemonOptions options;
  options.config = flags.config;
  options.host_profile = flags.host_profile;
  options.inject_fault = flags.inject_fault;
  options.max_pulls = flags.max_pulls;
  return RunDaemon(options);
}

}  // namespace
}  // namespace imgsel::plugin

int main(int argc, char** argv) {
  // One malloc arena for all threads. With one per thread (glibc's default,
  // up to 8 per core), memory a large selection freed on one thread stayed
  // in that thread's arena: 16 concurrent worst-case Selects by reference
  // peaked at 224 MiB and kept 110 after the burst; with one arena, 117 and
  // 27 (docs/RELIABILITY.md, "Memory"). Measured cost: about 0.07x on the
  // Select/empty-RPC ratio, throughput still over 8,000 selections/s.
  mallopt(M_ARENA_MAX, 1);
  // Debian's abseil is built without NDEBUG, which leaves absl::Mutex's
  // deadlock detector on: a global graph update on every lock, ours and
  // gRPC's. It is a debugging aid; the daemon's locks are leaves.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Signals are taken by sigwait in the main thread only: block them before
  // any other thread exists.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  imgsel::plugin::Flags flags;
  CLI::App app{"imgseld: the imgsel Selector API and CRI image-service proxy"};
  app.set_version_flag("--version", "imgseld " IMGSEL_VERSION);
  app.add_option("--config,-c", flags.config,
                 "imgsel.toml (default /etc/imgsel/imgsel.toml when it exists)");
  app.add_flag("--check-config", flags.check_config,
               "read and check the config, print \"FILE: ok\" or the error with file:line, and "
               "exit 0 or 1 (systemctl reload runs it first)");
  app.add_flag("--check", flags.check_node,
               "check this node's chain and exit: kubelet's image endpoint, imgseld's two "
               "sockets (listening, answering a health check), containerd's socket and "
               "namespace, the registry config; one line each (ok / problem and what to do / "
               "unknown), exit 1 when any is a problem");
  app.add_option(
      "--check-health", flags.check_health,
      "ask the Selector API socket at this path for its health; exit 0 when it "
      "answers SERVING, else 1 (what the DaemonSet's installer and readiness probe run)");
  app.add_option("--host-profile", flags.host_profile,
                 "select for this saved host profile (imgsel probe -o json) instead of probing");
  app.add_option("--max-pulls", flags.max_pulls,
                 "PullImage calls handled with selection at once; more are forwarded as sent")
      ->check(CLI::Range(1, 4096));
  app.add_option("--inject-fault", flags.inject_fault,
                 "exercise a fallback on purpose: record-write (image records always fail); "
                 "test hook: record-hold (each record write waits 30 s)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return imgsel::plugin::Run(flags);
}
