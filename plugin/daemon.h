// imgseld's life as a daemon, from start to exit:
//
//   start   read the config (or the defaults), probe the host (or read a
//           saved profile), build the pipeline, the CRI proxy and the
//           Selector API, listen on both sockets (systemd's when activated),
//           metrics, then say ready (sd_notify);
//   serve   SIGHUP reloads the config: a bad file is reported and the
//           running config stays; settings that need a restart are named;
//   drain   SIGTERM or SIGINT: stop accepting, let calls in flight finish
//           within [server] drain_timeout, remove the sockets, exit 0.
//
// Signals are taken by sigwait: the caller blocks SIGHUP, SIGTERM and
// SIGINT in every thread before calling RunDaemon (main.cc does, first).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "config/config.h"

namespace imgsel::plugin {

struct DaemonOptions {
  std::string config;        // imgsel.toml; empty: the default file if any
  std::string host_profile;  // a saved profile instead of probing
  std::string inject_fault;  // "record-write": image records always fail
  int max_pulls = 64;        // PullImage calls handled with selection at once
};

// The config at `path`; with no path, /etc/imgsel/imgsel.toml when it
// exists, else the defaults. As a start and a reload read it.
absl::StatusOr<Config> LoadConfigOrDefault(const std::string& path);

// Runs the daemon until it is told to stop; the process's exit code (1 when
// it could not start, naming why in the log).
int RunDaemon(const DaemonOptions& options);

}  // namespace imgsel::plugin
