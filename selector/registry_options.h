// The registry client's options from a config's [registry] table: the one
// place the pipeline and the CLI's `attach` turn a config into a client.
#pragma once

#include "config/config.h"
#include "registry/client.h"

namespace imgsel {

// config_path (containerd certs.d, a `:` list), docker_config, the connect
// and request timeouts, max_concurrent_per_registry and plain_http. The
// cache, the clock, size caps and the referrers TTL are the caller's.
registry::ClientOptions RegistryClientOptions(const RegistryConfig& config);

}  // namespace imgsel
