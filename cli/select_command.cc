// imgsel select: which entry of an index this host (or a saved profile) gets, and why.
#include <cstdio>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/inputs.h"
#include "cli/registry_flags.h"
#include "cli/registry_wait.h"
#include "cli/text_output.h"
#include "matcher/decision_json.h"
#include "matcher/index.h"
#include "oci/file_read.h"
#include "selector/oci_layout.h"
#include "selector/pipeline.h"
#include "selector/selection_json.h"
#include "selector/selection_stage.h"

namespace imgsel::cli {
namespace {

// The exit statuses of `imgsel select`, as its --help and docs/select.md list them.
constexpr char kSelectExitStatus[] =
    "Exit status: 0 selected (or nothing to choose), 1 nothing fits this host, 2 bad input, "
    "3 the registry could not be reached or refused, 4 no such tag or digest at the registry";
constexpr int kExitImageNotFound = 4;

struct SelectFlags {
  std::string source;
  std::string index_file;
  std::string host_profile;
  RegistryFlags registry;  // --config, --hosts-dir, --plain-http, --docker-config, --timeout
  std::string runtime_handler;
  std::string policy = "best";
  std::string output = "text";
};

// A registry reference: the whole pipeline, compatibility artifacts included.
int RunRegistrySelect(const SelectFlags& f, const Config& config, const HostProfile& host,
                      const SelectionRequest& request) {
  auto pipeline = SelectionPipeline::Create(config, host);
  if (!pipeline.ok()) return BadInput(pipeline.status());
  if (!(*pipeline)->cache_warning().empty()) {
    std::fprintf(stderr, "imgsel: warning: %s\n", (*pipeline)->cache_warning().c_str());
  }
  absl::StatusOr<Selection> selection;
  {
    RegistryWaitNotice notice((*pipeline)->client());
    selection = (*pipeline)->Select(request);
  }
  if (!selection.ok()) {
    std::fprintf(stderr, "imgsel: %s\n", std::string(selection.status().message()).c_str());
    // A reference that does not parse is bad input; a registry that fails is not.
    if (selection.status().code() == absl::StatusCode::kInvalidArgument) return 2;
    // The registry (or the mirror that answered for it) says there is no
    // such tag or digest: not the same as a registry that cannot be reached.
    if (selection.status().code() == absl::StatusCode::kNotFound &&
        StageOf(selection.status()) == SelectionStage::kResolve) {
      return kExitImageNotFound;
    }
    return 3;
  }
  if (f.output == "json") {
    std::cout << SelectionToJson(*selection);
  } else {
    std::cout << RenderSelectionText(*selection, host);
  }
  const Decision& d = selection->decision;
  return d.selected() || d.nothing_to_choose ? 0 : 1;
}

int RunSelect(const SelectFlags& f) {
  if (absl::Status s = CheckTimeoutFlag(f.registry.timeout_seconds); !s.ok()) return BadInput(s);
  if (f.source.empty() == f.index_file.empty()) {
    return BadInput(absl::InvalidArgumentError(
        "select: give exactly one of SOURCE (oci-layout:DIR[:TAG|@DIGEST]) or --index FILE"));
  }
  auto config = LoadConfigFlag(f.registry.config);
  if (!config.ok()) return BadInput(config.status());
  if (absl::Status s = ApplyRegistryFlags(f.registry, &*config); !s.ok()) return BadInput(s);
  auto host = HostFromFlags(f.host_profile, *config);
  if (!host.ok()) return BadInput(host.status());

  SelectionRequest request;
  request.runtime_handler = f.runtime_handler;
  request.policy = f.policy == "first-match" ? PolicyKind::kFirstMatch : PolicyKind::kBest;
  // One deadline for the whole selection, every registry request in it.
  request.budget = absl::Seconds(f.registry.timeout_seconds);
  std::string bytes;
  if (!f.index_file.empty()) {
    auto read = ReadFileBounded(f.index_file, ParseLimits{}.max_bytes);
    if (!read.ok()) return BadInput(read.status());
    bytes = *std::move(read);
    request.index_bytes = bytes;
    request.reference = f.index_file == "-" ? "standard input" : f.index_file;
  } else if (absl::StartsWith(f.source, "oci-layout:")) {
    auto layout = ParseOciLayoutRef(f.source);
    if (!layout.ok()) return BadInput(layout.status());
    request.layout = *std::move(layout);
    request.reference = f.source;
  } else {
    request.reference = f.source;
    return RunRegistrySelect(f, *config, *host, request);
  }
  // A source on this machine: the fetch half needs no registry, and every
  // failure is the caller's input.
  auto image = FetchLocalImage(request);
  if (!image.ok()) return BadInput(image.status());
  const Selection selection =
      DecideSelection(*image, *host, config->PolicyFor(f.runtime_handler), request.policy);
  const Decision& decision = selection.decision;
  const std::string name = request.layout.has_value()
                               ? absl::StrCat(f.source, " (", image->document_digest, ")")
                               : request.reference;
  if (f.output == "json") {
    std::cout << DecisionToJson(decision);
  } else {
    std::cout << RenderDecisionText(decision, name, *host);
  }
  return decision.selected() || decision.nothing_to_choose ? 0 : 1;
}

}  // namespace

void AddSelectCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<SelectFlags>();
  CLI::App* cmd = app.add_subcommand(
      "select", "Show which index entry this host (or a saved host profile) gets, and why");
  cmd->add_option("source", flags->source,
                  "An image reference (nginx:1.25, host:5000/app@sha256:...) or "
                  "oci-layout:DIR[:TAG|@DIGEST]");
  cmd->add_option("--index", flags->index_file, "Raw index JSON file, or - for standard input");
  cmd->add_option("--host-profile", flags->host_profile,
                  "Host profile JSON (imgsel probe --save) instead of this host");
  AddRegistryFlags(cmd, &flags->registry,
                   "seconds the whole selection may take, every registry request in it "
                   "(0.001-3600, default 60)");
  cmd->add_option("--runtime-handler", flags->runtime_handler,
                  "CRI runtime handler whose [handlers.NAME] rules apply");
  cmd->add_option("--policy", flags->policy, "best, or first-match (containerd's own choice)")
      ->check(CLI::IsMember({"best", "first-match"}));
  cmd->add_option("--output,-o", flags->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->footer(kSelectExitStatus);
  cmd->callback([flags, &exit_code] { exit_code = RunSelect(*flags); });
}

}  // namespace imgsel::cli
