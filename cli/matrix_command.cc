// imgsel matrix: which entry each image gives each host, before a migration.
//
//   imgsel matrix --host-profile old.json --host-profile new.json IMAGE...
//
// Every image (a registry reference or oci-layout:DIR[:TAG|@DIGEST]) is
// fetched once through the same pipeline as `imgsel select` (the artifacts
// of every entry that could win on any of the hosts), then decided once per
// saved host profile. Exit 0 when every image has an entry for every host, 1 when
// some pair has none (the table says which), 2 on bad input.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/inputs.h"
#include "cli/registry_flags.h"
#include "cli/registry_wait.h"
#include "cli/text_output.h"
#include "oci/file_read.h"
#include "oci/json_writer.h"
#include "registry/reference.h"
#include "selector/decide.h"
#include "selector/oci_layout.h"
#include "selector/pipeline.h"
#include "selector/selection_stage.h"

namespace imgsel::cli {
namespace {

struct MatrixFlags {
  std::vector<std::string> images;
  std::vector<std::string> host_profiles;
  RegistryFlags registry;  // --config, --hosts-dir, --plain-http, --docker-config, --timeout
  std::string runtime_handler;
  std::string output = "text";
};

struct Cell {
  std::string digest;    // empty: nothing fits, or an error
  std::string platform;  // of the chosen entry
  bool fallback = false;
  std::string error;
  bool not_found = false;  // the error: the registry has no such tag or digest
};

struct Host {
  std::string name;
  HostProfile profile;
};

Cell FromDecision(const Decision& d, bool fallback) {
  Cell cell;
  cell.fallback = fallback;
  if (const Descriptor* chosen = d.selected_descriptor()) {
    cell.digest = std::string(chosen->digest);
    cell.platform = chosen->platform
                        ? FormatPlatform(NormalizePlatform(chosen->platform->ToPlatform()))
                        : "(none)";
  } else if (d.nothing_to_choose) {
    cell.platform = "single manifest";
  }
  return cell;
}

// One image's row: fetched once, decided for each host.
std::vector<Cell> EvaluateRow(const std::string& image, const SelectionPipeline& pipeline,
                              const std::vector<Host>& hosts, const Config& config,
                              const std::string& handler, absl::Duration budget) {
  SelectionRequest request;
  request.reference = image;
  if (absl::StartsWith(image, "oci-layout:")) {
    auto layout = ParseOciLayoutRef(image);
    if (!layout.ok()) {
      return std::vector<Cell>(hosts.size(), {.error = std::string(layout.status().message())});
    }
    request.layout = *std::move(layout);
  }
  request.runtime_handler = handler;
  request.budget = budget;  // one deadline per image, for all hosts
  std::vector<const HostProfile*> profiles;
  for (const Host& h : hosts) profiles.push_back(&h.profile);
  auto fetched = pipeline.Fetch(request, profiles);
  if (!fetched.ok()) {
    // As `imgsel select`: a tag or digest the registry does not have is
    // not a registry that cannot be reached.
    const bool not_found = fetched.status().code() == absl::StatusCode::kNotFound &&
                           StageOf(fetched.status()) == SelectionStage::kResolve;
    return std::vector<Cell>(
        hosts.size(), {.error = std::string(fetched.status().message()), .not_found = not_found});
  }
  const Policy policy = config.PolicyFor(handler);
  std::vector<Cell> row;
  for (const Host& h : hosts) {
    const Selection s = DecideSelection(*fetched, h.profile, policy, PolicyKind::kBest);
    row.push_back(FromDecision(s.decision, s.decision.fallback));
  }
  return row;
}

std::string Short(const std::string& digest) {
  return digest.size() > 19 ? digest.substr(0, 19) : digest;
}

int RunMatrix(const MatrixFlags& f) {
  if (absl::Status s = CheckTimeoutFlag(f.registry.timeout_seconds); !s.ok()) return BadInput(s);
  if (f.images.empty() || f.host_profiles.empty()) {
    return BadInput(
        absl::InvalidArgumentError("matrix: give at least one --host-profile FILE and one IMAGE"));
  }
  // An image that cannot name anything is the caller's input (exit 2), not
  // a cell that failed to resolve (exit 3).
  for (const std::string& image : f.images) {
    absl::Status named = absl::StartsWith(image, "oci-layout:")
                             ? ParseOciLayoutRef(image).status()
                             : registry::ParseReference(image).status();
    if (!named.ok()) return BadInput(named);
  }
  auto config = LoadConfigFlag(f.registry.config);
  if (!config.ok()) return BadInput(config.status());
  if (absl::Status s = ApplyRegistryFlags(f.registry, &*config); !s.ok()) return BadInput(s);
  std::vector<Host> hosts;
  // One pipeline for every host: each image is fetched once. Its own host
  // is the first profile; every decision names the host it is for.
  std::unique_ptr<SelectionPipeline> pipeline;
  for (const std::string& path : f.host_profiles) {
    auto bytes = ReadFileBounded(path, kMaxHostProfileBytes);
    if (!bytes.ok()) return BadInput(bytes.status());
    auto profile = ParseHostProfile(*bytes, path);
    if (!profile.ok()) return BadInput(profile.status());
    if (pipeline == nullptr) {
      auto created = SelectionPipeline::Create(*config, *profile);
      if (!created.ok()) return BadInput(created.status());
      pipeline = *std::move(created);
      if (!pipeline->cache_warning().empty()) {
        std::fprintf(stderr, "imgsel: warning: %s\n", pipeline->cache_warning().c_str());
      }
    }
    hosts.push_back({std::filesystem::path(path).stem().string(), *std::move(profile)});
  }
  // Hosts are named after their files; two files of one name are told
  // apart by their paths.
  for (size_t i = 0; i < hosts.size(); ++i) {
    for (size_t j = 0; j < hosts.size(); ++j) {
      if (i != j && hosts[i].name == std::filesystem::path(f.host_profiles[j]).stem().string()) {
        hosts[i].name = f.host_profiles[i];
        break;
      }
    }
  }
  std::vector<std::vector<Cell>> table;
  bool all_fit = true;
  RegistryWaitNotice notice(pipeline->client());
  for (const std::string& image : f.images) {
    std::vector<Cell> row = EvaluateRow(image, *pipeline, hosts, *config, f.runtime_handler,
                                        absl::Seconds(f.registry.timeout_seconds));
    for (const Cell& cell : row) {
      if (cell.digest.empty() && cell.platform != "single manifest") all_fit = false;
    }
    table.push_back(std::move(row));
  }
  if (f.output == "json") {
    JsonWriter w(2);
    w.BeginObject();
    w.Key("hosts").BeginArray();
    for (const Host& h : hosts) w.String(h.name);
    w.EndArray();
    w.Key("images").BeginArray();
    for (size_t i = 0; i < f.images.size(); ++i) {
      w.BeginObject().Key("image").String(f.images[i]).Key("results").BeginArray();
      for (size_t j = 0; j < hosts.size(); ++j) {
        const Cell& c = table[i][j];
        w.BeginObject().Key("host").String(hosts[j].name).Key("selected");
        if (c.digest.empty()) {
          w.Null();
        } else {
          w.String(c.digest);
        }
        w.Key("platform").String(c.platform);
        w.Key("fallback").Bool(c.fallback);
        if (!c.error.empty()) w.Key("error").String(c.error);
        w.EndObject();
      }
      w.EndArray().EndObject();
    }
    w.EndArray().EndObject();
    std::cout << w.Take() << "\n";
  } else {
    std::string out = absl::StrFormat("%-40s", "IMAGE");
    // Everything below came from outside (arguments, file names, indexes,
    // registries): escaped before it reaches a terminal.
    for (const Host& h : hosts)
      absl::StrAppend(&out, absl::StrFormat("  %-40s", Printable(h.name)));
    out += "\n";
    for (size_t i = 0; i < f.images.size(); ++i) {
      absl::StrAppend(&out, absl::StrFormat("%-40s", Printable(f.images[i])));
      for (const Cell& c : table[i]) {
        std::string text = !c.error.empty()     ? "error (see below)"
                           : !c.digest.empty()  ? absl::StrCat(c.platform, " ", Short(c.digest),
                                                              c.fallback ? " (fallback)" : "")
                           : c.platform.empty() ? "NOTHING FITS"
                                                : c.platform;
        absl::StrAppend(&out, absl::StrFormat("  %-40s", Printable(text)));
      }
      out += "\n";
    }
    for (size_t i = 0; i < f.images.size(); ++i) {
      for (size_t j = 0; j < hosts.size(); ++j) {
        if (!table[i][j].error.empty()) {
          absl::StrAppend(&out, "error: ", Printable(f.images[i]), " on ", Printable(hosts[j].name),
                          ": ", Printable(table[i][j].error), "\n");
        }
      }
    }
    std::cout << out;
  }
  // 3 when some image could not be read or resolved; 4 when every image
  // that failed names a tag or digest its registry does not have.
  bool missing = false;
  for (const auto& row : table) {
    for (const Cell& c : row) {
      if (!c.error.empty() && !c.not_found) return 3;
      missing = missing || c.not_found;
    }
  }
  if (missing) return 4;
  return all_fit ? 0 : 1;
}

}  // namespace

void AddMatrixCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<MatrixFlags>();
  CLI::App* cmd = app.add_subcommand(
      "matrix", "Evaluate images against saved host profiles (e.g. old and new hardware)");
  cmd->add_option("images", flags->images, "Image references or oci-layout:DIR[:TAG|@DIGEST]")
      ->required();
  cmd->add_option("--host-profile", flags->host_profiles,
                  "Host profile JSON (imgsel probe --save); repeat for each host")
      ->required();
  AddRegistryFlags(cmd, &flags->registry,
                   "seconds each image's fetch may take, for all hosts (0.001-3600, default 60)");
  cmd->add_option("--runtime-handler", flags->runtime_handler,
                  "CRI runtime handler whose [handlers.NAME] rules apply");
  cmd->add_option("--output,-o", flags->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->callback([flags, &exit_code] { exit_code = RunMatrix(*flags); });
}

}  // namespace imgsel::cli
