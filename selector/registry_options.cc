#include "selector/registry_options.h"

namespace imgsel {

registry::ClientOptions RegistryClientOptions(const RegistryConfig& config) {
  registry::ClientOptions options;
  options.hosts_dir = config.config_path;
  options.docker_config = config.docker_config;
  options.connect_timeout = config.connect_timeout;
  options.request_timeout = config.request_timeout;
  options.max_concurrent_per_registry = config.max_concurrent_per_registry;
  options.plain_http = config.plain_http;
  return options;
}

}  // namespace imgsel
