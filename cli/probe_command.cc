// imgsel probe: this host's profile, as a summary or the JSON other commands read.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/commands.h"
#include "cli/inputs.h"
#include "cli/probe_host.h"
#include "cli/text_output.h"
#include "matcher/features.h"
#include "matcher/nfd_labels.h"
#include "oci/file_write.h"

namespace imgsel::cli {
namespace {

struct ProbeFlags {
  std::string output = "text";
  std::string save;
  std::string config;
  std::string root = "/";
};

std::string Attr(const NfdFeatures& nfd, const std::string& feature, const std::string& key) {
  auto f = nfd.attributes.find(feature);
  if (f == nfd.attributes.end()) return "";
  auto v = f->second.find(key);
  return v == f->second.end() ? "" : v->second;
}

std::string RenderText(const probe::ProbeResult& r) {
  const HostProfile& p = r.profile;
  const NfdFeatures& nfd = p.nfd;
  std::string out;
  std::string level;
  if (p.platform.architecture == "amd64") {
    level = absl::StrCat(" (x86-64-", p.platform.variant.empty() ? "v1" : p.platform.variant, ")");
  } else if (p.platform.architecture == "arm64") {
    level = absl::StrCat(" (Armv", p.platform.variant.empty() ? "8" : p.platform.variant.substr(1),
                         "-A)");
  }
  absl::StrAppend(&out, "platform  ", FormatPlatform(p.platform), level, "\n");
  std::string model = r.cpu_model.empty() ? "unknown CPU" : r.cpu_model;
  std::string vendor = Attr(nfd, "cpu.model", "vendor_id");
  absl::StrAppend(&out, "cpu       ", model);
  if (!vendor.empty()) {
    absl::StrAppend(&out, " (", vendor, " family ", Attr(nfd, "cpu.model", "family"), " model ",
                    Attr(nfd, "cpu.model", "id"), ")");
  }
  absl::StrAppend(&out, ", ", r.cpu_threads, " threads, ",
                  Attr(nfd, "cpu.topology", "socket_count"), " socket(s), SMT ",
                  Attr(nfd, "cpu.topology", "hardware_multithreading") == "true" ? "on" : "off",
                  ", ", Attr(nfd, "memory.numa", "node_count"), " NUMA node(s)\n");
  absl::StrAppend(&out, "features  ", p.features.size(), ": ", absl::StrJoin(p.features, " "),
                  "\n");
  if (r.gpus.empty()) {
    absl::StrAppend(&out, "gpus      none\n");
  } else {
    for (size_t i = 0; i < r.gpus.size(); ++i) {
      const probe::Gpu& g = r.gpus[i];
      absl::StrAppend(&out, i == 0 ? "gpus      " : "          ", g.vendor_name, " ", g.vendor, ":",
                      g.device, " at ", g.address);
      if (!g.driver_version.empty()) absl::StrAppend(&out, ", driver ", g.driver_version);
      absl::StrAppend(&out, "\n");
    }
  }
  std::string kernel = Attr(nfd, "kernel.version", "full");
  absl::StrAppend(&out, "kernel    ", kernel.empty() ? "unknown" : kernel);
  if (auto c = nfd.attributes.find("kernel.config"); c != nfd.attributes.end()) {
    absl::StrAppend(&out, ", config with ", c->second.size(), " options");
  } else {
    absl::StrAppend(&out, ", config not readable");
  }
  if (auto m = nfd.flags.find("kernel.loadedmodule"); m != nfd.flags.end()) {
    absl::StrAppend(&out, ", ", m->second.size(), " modules loaded");
  }
  absl::StrAppend(&out, "\n");
  std::string os = Attr(nfd, "system.osrelease", "PRETTY_NAME");
  if (os.empty()) os = Attr(nfd, "system.osrelease", "NAME");
  absl::StrAppend(&out, "os        ", os.empty() ? "unknown" : os, "\n");
  size_t pci = 0;
  if (auto i = nfd.instances.find("pci.device"); i != nfd.instances.end()) pci = i->second.size();
  absl::StrAppend(&out, "pci       ", pci, " devices\n");
  if (auto l = nfd.attributes.find("local.feature"); l != nfd.attributes.end()) {
    absl::StrAppend(&out, "local     ", l->second.size(), " operator features\n");
  }
  return out;
}

void PrintWarnings(const std::vector<std::string>& warnings) {
  for (const std::string& w : warnings) std::fprintf(stderr, "imgsel: warning: %s\n", w.c_str());
}

int RunProbe(const ProbeFlags& f) {
  auto config = LoadConfigFlag(f.config);
  if (!config.ok()) return BadInput(config.status());
  probe::ProbeOptions options = ProbeOptionsFromConfig(*config);
  options.root = f.root;
  // Another root is another machine's files: its CPU is not the one running us.
  options.use_cpuid = f.root.empty() || f.root == "/";
  auto result = probe::ProbeHost(options);
  if (!result.ok()) return BadInput(result.status());
  PrintWarnings(result->warnings);
  std::string json = HostProfileToJson(result->profile);
  if (!json.empty() && json.back() != '\n') json.push_back('\n');
  if (!f.save.empty()) {
    if (absl::Status s = WriteFileAtomic(f.save, json); !s.ok()) return BadInput(s);
  }
  if (f.output == "json") {
    std::cout << json;
  } else if (f.output == "labels") {
    // What Proposal F's NFD group keys read on this host: the labels NFD
    // would publish (matcher/nfd_labels.h), one key=value a line. Values
    // come from the host: escaped for the terminal.
    // As a node shows them: in NFD's namespace unless a hook named its own.
    for (const auto& [key, value] : NfdLabels(result->profile.nfd)) {
      const char* ns = key.find('/') == std::string::npos ? "feature.node.kubernetes.io/" : "";
      std::cout << ns << Printable(key) << "=" << Printable(value) << "\n";
    }
  } else {
    std::cout << RenderText(*result);
    if (!f.save.empty()) std::cout << "saved     " << f.save << "\n";
  }
  return 0;
}

}  // namespace

probe::ProbeOptions ProbeOptionsFromConfig(const Config& config) {
  probe::ProbeOptions options;
  options.declared_features = config.host.features;
  options.declared_attributes = config.host.attributes;
  options.hooks_dir = config.host.hooks_dir;
  options.hook_timeout = config.host.hook_timeout;
  return options;
}

absl::StatusOr<HostProfile> ProbeThisHost(const Config& config) {
  auto result = probe::ProbeHost(ProbeOptionsFromConfig(config));
  if (!result.ok()) return result.status();
  PrintWarnings(result->warnings);
  return std::move(result->profile);
}

void AddProbeCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ProbeFlags>();
  CLI::App* cmd = app.add_subcommand(
      "probe", "Show this host's profile: platform and level, CPU features, NFD features");
  cmd->add_option("--output,-o", flags->output,
                  "text (a summary), json (the host profile) or labels (the node labels NFD "
                  "would publish, which Proposal F's NFD keys read)")
      ->check(CLI::IsMember({"text", "json", "labels"}));
  cmd->add_option("--save", flags->save,
                  "Also write the profile JSON to FILE (atomically), for --host-profile")
      ->check([](const std::string& path) {
        return path.empty() ? std::string("needs a file name") : std::string();
      });
  cmd->add_option("--config", flags->config,
                  absl::StrCat("imgsel.toml (default ", kDefaultConfigPath, " when present)"));
  cmd->add_option("--root", flags->root,
                  "Read /proc, /sys and /etc under DIR (a mounted root or a test tree); CPU "
                  "facts then come from DIR/proc/cpuinfo");
  cmd->callback([flags, &exit_code] { exit_code = RunProbe(*flags); });
}

}  // namespace imgsel::cli
