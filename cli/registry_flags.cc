#include "cli/registry_flags.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "cli/inputs.h"
#include "registry/hosts.h"

namespace imgsel::cli {

void AddRegistryFlags(CLI::App* cmd, RegistryFlags* flags, const std::string& timeout_help) {
  cmd->add_option("--config", flags->config,
                  absl::StrCat("imgsel.toml (default ", kDefaultConfigPath,
                               " when present); its [registry] table applies"));
  cmd->add_option("--hosts-dir", flags->hosts_dir,
                  "containerd registry host config: certs.d directories with hosts.toml files, "
                  "several separated by ':' (overrides [registry] config_path)");
  cmd->add_flag("--plain-http", flags->plain_http,
                "talk http:// to a registry that has no hosts.toml saying how");
  cmd->add_option("--docker-config", flags->docker_config,
                  "Docker config.json with registry credentials (overrides [registry] "
                  "docker_config)");
  cmd->add_option("--timeout", flags->timeout_seconds, timeout_help);
}

absl::Status CheckTimeoutFlag(double seconds) {
  // NaN fails this comparison too; 0 would mean no deadline.
  if (!(seconds >= 0.001 && seconds <= 3600)) {
    return absl::InvalidArgumentError("--timeout: want seconds from 0.001 to 3600");
  }
  return absl::OkStatus();
}

absl::Status ApplyRegistryFlags(const RegistryFlags& flags, Config* config) {
  for (const std::string& root : registry::HostsDirRoots(flags.hosts_dir)) {
    std::error_code ec;
    if (!std::filesystem::is_directory(root, ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--hosts-dir: ", root, ": not a directory (want containerd's certs.d)"));
    }
  }
  if (!flags.hosts_dir.empty()) config->registry.config_path = flags.hosts_dir;
  if (!flags.docker_config.empty()) config->registry.docker_config = flags.docker_config;
  if (flags.plain_http) config->registry.plain_http = true;
  return absl::OkStatus();
}

}  // namespace imgsel::cli
