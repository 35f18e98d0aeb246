#include "cli/inputs.h"

#include <cstdio>
#include <filesystem>

#include "cli/probe_host.h"
#include "oci/file_read.h"

namespace imgsel::cli {

int BadInput(const absl::Status& status) {
  std::fprintf(stderr, "imgsel: %s\n", std::string(status.message()).c_str());
  return 2;
}

absl::StatusOr<Config> LoadConfigFlag(const std::string& path) {
  if (!path.empty()) return LoadConfig(path);
  std::error_code ec;
  if (std::filesystem::exists(kDefaultConfigPath, ec)) return LoadConfig(kDefaultConfigPath);
  return DefaultConfig();
}

absl::StatusOr<HostProfile> HostFromFlags(const std::string& profile_path, const Config& config) {
  if (!profile_path.empty()) {
    auto bytes = ReadFileBounded(profile_path, kMaxHostProfileBytes);
    if (!bytes.ok()) return bytes.status();
    return ParseHostProfile(*bytes, profile_path);
  }
  return ProbeThisHost(config);
}

}  // namespace imgsel::cli
