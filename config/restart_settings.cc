#include "config/restart_settings.h"

namespace imgsel {

std::vector<std::string> SettingsNeedingRestart(const Config& running, const Config& next) {
  std::vector<std::string> out;
  auto check = [&out](bool changed, const char* name) {
    if (changed) out.emplace_back(name);
  };
  const HostConfig& h0 = running.host;
  const HostConfig& h1 = next.host;
  check(h0.features != h1.features, "[host] features");
  check(h0.attributes != h1.attributes, "[host] attributes");
  check(h0.hooks_dir != h1.hooks_dir, "[host] hooks_dir");
  check(h0.hook_timeout != h1.hook_timeout, "[host] hook_timeout");
  const CompatConfig& c0 = running.compat;
  const CompatConfig& c1 = next.compat;
  check(c0.cache_dir != c1.cache_dir, "[compat] cache_dir");
  check(c0.cache_max_bytes != c1.cache_max_bytes, "[compat] cache_max_bytes");
  check(c0.referrers_ttl != c1.referrers_ttl, "[compat] referrers_ttl");
  check(c0.max_layer_bytes != c1.max_layer_bytes, "[compat] max_layer_bytes");
  const RegistryConfig& r0 = running.registry;
  const RegistryConfig& r1 = next.registry;
  check(r0.config_path != r1.config_path, "[registry] config_path");
  check(r0.docker_config != r1.docker_config, "[registry] docker_config");
  check(r0.connect_timeout != r1.connect_timeout, "[registry] connect_timeout");
  check(r0.request_timeout != r1.request_timeout, "[registry] request_timeout");
  check(r0.max_concurrent_per_registry != r1.max_concurrent_per_registry,
        "[registry] max_concurrent_per_registry");
  const ServerConfig& s0 = running.server;
  const ServerConfig& s1 = next.server;
  check(s0.socket != s1.socket, "[server] socket");
  check(s0.cri_socket != s1.cri_socket, "[server] cri_socket");
  check(s0.containerd_socket != s1.containerd_socket, "[server] containerd_socket");
  check(s0.ns != s1.ns, "[server] namespace");
  check(s0.metrics != s1.metrics, "[server] metrics");
  check(s0.metrics_allow_remote != s1.metrics_allow_remote, "[server] metrics_allow_remote");
  return out;
}

}  // namespace imgsel
