// imgseld as a daemon: start (config, host, pipeline, the CRI proxy and the
// Selector API on their sockets, metrics, readiness), serve with reloads,
// drain (plugin/daemon.h).
#include "plugin/daemon.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "config/config.h"
#include "config/restart_settings.h"
#include "matcher/host_profile.h"
#include "oci/file_read.h"
#include "plugin/content_handover.h"
#include "plugin/cri_proxy.h"
#include "plugin/decision_log.h"
#include "plugin/handler_status.h"
#include "plugin/image_records.h"
#include "plugin/metrics.h"
#include "plugin/metrics_http.h"
#include "plugin/process_metrics.h"
#include "plugin/pull_handler.h"
#include "plugin/sandbox_handlers.h"
#include "plugin/selector_service.h"
#include "plugin/service_notify.h"
#include "plugin/sockets.h"
#include "plugin/upstream.h"
#include "probe/probe.h"

namespace imgsel::plugin {
namespace {

constexpr char kDefaultConfig[] = "/etc/imgsel/imgsel.toml";

absl::StatusOr<HostProfile> LoadHost(const DaemonOptions& flags, const Config& config) {
  if (!flags.host_profile.empty()) {
    auto text = ReadFileBounded(flags.host_profile, kMaxHostProfileBytes);
    if (!text.ok()) return text.status();
    return ParseHostProfile(*text, flags.host_profile);
  }
  probe::ProbeOptions options;
  options.declared_features = config.host.features;
  options.declared_attributes = config.host.attributes;
  options.hooks_dir = config.host.hooks_dir;
  options.hook_timeout = config.host.hook_timeout;
  auto result = probe::ProbeHost(options);
  if (!result.ok()) return result.status();
  for (const std::string& w : result->warnings) LogMessage("warn", absl::StrCat("probe: ", w));
  return std::move(result->profile);
}

// `max_pulls` (--max-pulls) is both the CRI path's count of calls handled
// with selection and its pool of selection places: one number, because a
// pull holds its place from selection until containerd answers.
PullSettings SettingsFrom(const Config& config, int max_pulls) {
  PullSettings s;
  s.max_selections = max_pulls;
  s.select_timeout = config.server.select_timeout;
  s.fail_when_nothing_fits = config.server.fail_when_nothing_fits;
  s.content_handover = config.server.content_handover;
  for (const auto& [name, handler] : config.handlers) s.handlers_with_rules.insert(name);
  return s;
}

int Fail(const absl::Status& status) {
  LogMessage("error", std::string(status.message()));
  return 1;
}

// Takes server reflection off a server: gRPC's reflection plugin registers
// itself with every ServerBuilder when the library loads, and on the CRI
// socket it would answer calls that belong to containerd.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& p) {
                                    return p->name() == "proto_server_reflection";
                                  }),
                   plugins->end());
  }
};

// What a reload changes in a running daemon (not owned).
struct Reloadable {
  const Config* started;  // what the sockets, client and probe were set up from
  PullHandler* pulls;
  SelectorService* selector;
  SelectionPipeline* pipeline;
  Metrics* metrics;
};

// Serves until SIGTERM or SIGINT; SIGHUP reloads the config into the
// parts that take one (a bad file is reported and the running config
// stays). Returns the drain timeout of the config last applied.
absl::Duration ServeUntilStopped(const DaemonOptions& flags, const Reloadable& running,
                                 const std::string& serving, absl::Duration drain) {
  const Config& started = *running.started;
  Metrics& metrics = *running.metrics;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    if (sig == SIGHUP) {
      NotifyReloading();
      // Read as a start reads it: without --config, the default file when
      // it exists (it may have been created since), else the defaults.
      auto next = LoadConfigOrDefault(flags.config);
      if (!next.ok()) {
        metrics.CountReload(false);
        LogMessage("error", absl::StrCat("reload: ", next.status().message(),
                                         "; keeping the running config"));
        NotifyReady("reload refused; serving with the running config");
        continue;
      }
      // Against the config imgseld started with: that is what the sockets,
      // the registry client and the probe were set up from.
      // With --host-profile no probe runs, so [host] never applies at all.
      Config compared = *next;
      if (!flags.host_profile.empty()) compared.host = started.host;
      const std::vector<std::string> pending = SettingsNeedingRestart(started, compared);
      if (!pending.empty()) {
        LogMessage("warn", absl::StrCat("reload: ", absl::StrJoin(pending, ", "),
                                        " changed; they take effect on restart"));
      }
      const std::string next_source = next->source;
      running.pulls->SetSettings(SettingsFrom(*next, flags.max_pulls));
      running.selector->SetDefaultTimeout(next->server.select_timeout);
      drain = next->server.drain_timeout;
      running.pipeline->Reload(*std::move(next));
      metrics.CountReload(true);
      LogMessage("info", absl::StrCat("reload: ", next_source, " applied"));
      NotifyReady(absl::StrCat("reload: ", next_source, " applied; ", serving));
      continue;
    }
    break;
  }

  return drain;
}

// Stops accepting, lets calls in flight finish within `drain`, removes
// the sockets imgseld created and stops the metrics listener; returns once
// the servers have shut down (at most `drain` and a second).
void Drain(Listener& api, Listener& cri, const CriProxy& proxy, const SelectorService& selector,
           MetricsHttpServer* metrics_http, absl::Duration drain) {
  // Nothing is accepted from here on. Under socket activation, new
  // connections stay queued on the socket systemd holds, for the imgseld it
  // starts next (a server that is shutting down would take them in only to
  // drop them); on a socket imgseld created, they are refused. Stop() has
  // returned before the drain is announced, so whoever reads the line can
  // rely on it.
  for (Listener* l : {&api, &cri}) l->acceptor->Stop();
  const std::string draining = absl::StrCat("draining for up to ", absl::FormatDuration(drain));
  NotifyStopping(draining);
  LogMessage("info", draining);
  api.server->GetHealthCheckService()->SetServingStatus(false);
  // Shutdown returns only when clients have also dropped their idle
  // connections (or at the deadline, when it cancels what is left); the
  // drain is over as soon as no call is in flight, so it runs on its own
  // thread, joined once it has returned.
  const absl::Time drain_end = absl::Now() + drain;
  auto stopped = std::make_shared<std::atomic<bool>>(false);
  std::thread shutdown([api = api.server.get(), cri = cri.server.get(), stopped, drain_end] {
    const auto deadline = absl::ToChronoTime(drain_end);
    std::thread api_stop([&] { api->Shutdown(deadline); });
    cri->Shutdown(deadline);
    api_stop.join();
    *stopped = true;
  });
  absl::SleepFor(absl::Milliseconds(20));  // new calls are refused from here on
  while (!*stopped && absl::Now() < drain_end + absl::Seconds(1) &&
         (proxy.calls_in_flight() > 0 || selector.calls_in_flight() > 0)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  for (Listener* l : {&api, &cri}) {
    if (!l->path.empty()) unlink(l->path.c_str());
  }
  if (metrics_http) metrics_http->Stop();
  // Every selection and pull ends by its own budget or deadline, and
  // Shutdown by drain_end: joining waits at most that long. Then the
  // servers, the services and the pipeline are destroyed in order, with no
  // thread left using them.
  shutdown.join();
  LogMessage("info", "imgseld stopped");
}

}  // namespace

absl::StatusOr<Config> LoadConfigOrDefault(const std::string& path) {
  if (!path.empty()) return LoadConfig(path);
  if (access(kDefaultConfig, F_OK) == 0) return LoadConfig(kDefaultConfig);
  return DefaultConfig();
}

int RunDaemon(const DaemonOptions& options) {
  auto config = LoadConfigOrDefault(options.config);
  if (!config.ok()) return Fail(config.status());
  const Config started = *config;
  auto host = LoadHost(options, *config);
  if (!host.ok()) return Fail(host.status());
  const ServerConfig server_config = config->server;
  auto created = SelectionPipeline::Create(*config, *host);
  if (!created.ok()) return Fail(created.status());
  std::shared_ptr<SelectionPipeline> pipeline = std::move(*created);
  if (!pipeline->cache_warning().empty()) LogMessage("warn", pipeline->cache_warning());

  Metrics metrics(IMGSEL_VERSION);
  GrpcCriUpstream upstream(UnixChannel(server_config.containerd_socket));
  std::unique_ptr<ImageRecordWriter> records;
  if (options.inject_fault == "record-write") {
    records = std::make_unique<FailingImageRecords>();
  } else if (options.inject_fault == "record-hold") {
    records = std::make_unique<HeldImageRecords>(
        std::make_unique<ContainerdImageRecords>(UnixChannel(server_config.containerd_socket),
                                                 server_config.ns),
        absl::Seconds(30));
  } else if (!options.inject_fault.empty()) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--inject-fault: unknown fault \"", options.inject_fault, "\"")));
  } else {
    records = std::make_unique<ContainerdImageRecords>(UnixChannel(server_config.containerd_socket),
                                                       server_config.ns);
  }
  PullHandler pulls([pipeline](const SelectionRequest& r) { return pipeline->Select(r); },
                    &upstream, records.get(), &metrics,
                    [](const DecisionLine& line) {
                      LogLine(FormatDecisionLine(line, absl::Now()),
                              line.outcome == "refused" ? LogPriority::kWarn : LogPriority::kInfo);
                    });
  pulls.SetSettings(SettingsFrom(*config, options.max_pulls));
  // The chosen manifest and config a selection fetched go to containerd's
  // content store, so its pull by digest does not fetch them again.
  ContainerdContentHandover handover(UnixChannel(server_config.containerd_socket),
                                     server_config.ns);
  pulls.SetContentHandover(&handover);
  CriSandboxHandlers sandboxes(UnixChannel(server_config.containerd_socket));
  pulls.SetSandboxHandlers(&sandboxes);
  HandlerImageStatus statuses(&upstream, records.get(), &pulls);
  CriProxy proxy(&upstream, &pulls, &metrics, options.max_pulls);
  proxy.SetHandlerImageStatus(&statuses);
  SelectorService selector(pipeline, &metrics, server_config.select_timeout);

  const std::vector<ActivatedSocket> activated = TakeActivatedSockets();
  const int cri_fd = FindActivatedSocket(activated, "cri", server_config.cri_socket);
  const int api_fd = FindActivatedSocket(activated, "selector", server_config.socket);

  // The CRI socket serves the proxy alone: built before health and
  // reflection are switched on for the API socket.
  grpc::EnableDefaultHealthCheckService(false);
  grpc::ServerBuilder cri_builder;
  cri_builder.SetOption(std::make_unique<WithoutReflection>());
  cri_builder.RegisterCallbackGenericService(&proxy);
  cri_builder.SetMaxReceiveMessageSize(kMaxCriMessageBytes);
  cri_builder.SetMaxSendMessageSize(kMaxCriMessageBytes);
  auto cri = StartServer(cri_builder, server_config.cri_socket, cri_fd, "[server] cri_socket");
  if (!cri.ok()) return Fail(cri.status());
  // containerd's socket under another name for this one (a symlink, a bind
  // mount) would have every call forwarded to imgseld itself, without end.
  struct stat ours = {};
  struct stat upstream_file = {};
  if (stat(server_config.cri_socket.c_str(), &ours) == 0 &&
      stat(server_config.containerd_socket.c_str(), &upstream_file) == 0 &&
      ours.st_dev == upstream_file.st_dev && ours.st_ino == upstream_file.st_ino) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("[server] containerd_socket: ", server_config.containerd_socket,
                     " is imgseld's own CRI socket ", server_config.cri_socket)));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder api_builder;
  api_builder.RegisterService(&selector);
  api_builder.SetMaxReceiveMessageSize(static_cast<int>(kMaxIndexBytes + (64 << 10)));
  auto api = StartServer(api_builder, server_config.socket, api_fd, "[server] socket");
  if (!api.ok()) return Fail(api.status());
  for (const ActivatedSocket& a : activated) {
    if (a.fd == cri_fd || a.fd == api_fd) continue;
    LogMessage("warn", absl::StrCat("socket activation: descriptor ", a.fd, " (",
                                    a.path.empty() ? "no path" : a.path,
                                    ") is neither [server] socket nor cri_socket; ignored"));
  }
  api->server->GetHealthCheckService()->SetServingStatus(true);

  std::unique_ptr<MetricsHttpServer> metrics_http;
  if (!server_config.metrics.empty()) {
    auto m = MetricsHttpServer::Start(server_config.metrics, server_config.metrics_allow_remote,
                                      [&metrics] {
                                        std::string out = metrics.Render();
                                        // Left out, not an error, where /proc is hidden.
                                        auto process = ReadProcessStats("/proc/self");
                                        if (process.ok()) RenderProcessStats(out, *process);
                                        return out;
                                      });
    if (!m.ok()) return Fail(m.status());
    metrics_http = *std::move(m);
  }
  const std::string serving = absl::StrCat(
      "imgseld serving: Selector API ", server_config.socket, ", CRI proxy ",
      server_config.cri_socket, " -> containerd ", server_config.containerd_socket, " (namespace ",
      server_config.ns, "), host ", FormatPlatform(pipeline->host().platform), ", metrics ",
      server_config.metrics.empty() ? "off" : server_config.metrics, ", config ", config->source);
  LogMessage("info", serving);
  // Only now: the probe ran, the config was read, both servers accept and
  // metrics listen. A start that failed before this never said ready.
  NotifyReady(serving);

  const absl::Duration drain =
      ServeUntilStopped(options, Reloadable{&started, &pulls, &selector, pipeline.get(), &metrics},
                        serving, server_config.drain_timeout);
  Drain(*api, *cri, proxy, selector, metrics_http.get(), drain);
  LogMessage("info", "imgseld stopped");
  return 0;
}

}  // namespace imgsel::plugin
