// imgsel validate FILE: check a compatibility spec before publishing it.
//
// Every problem is listed with FILE:LINE:COLUMN (schema, operator value
// counts, regexps that do not compile, numbers and versions that do not
// parse, bounds); warnings (unknown keys) do not make a spec invalid.
// With --host-profile the spec is also evaluated against a saved profile and
// each rule is printed the way `nfd compat validate-node` does, Proposal F
// groups read under the config's [compat.groups] (--config, or the default
// file when there is one).
//
// Exit: 0 valid (and, with --host-profile, some set matches the host);
//       1 invalid, or no set matches the host;
//       2 the file or the profile cannot be read, or bad usage.
#include <cstdio>
#include <iostream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/inputs.h"
#include "cli/text_output.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_spec.h"
#include "matcher/host_profile.h"
#include "oci/file_read.h"
#include "oci/json_writer.h"

namespace imgsel::cli {
namespace {

struct ValidateFlags {
  std::string file;
  std::string output = "text";
  std::string format = "auto";
  std::string host_profile;
  std::string config;  // its [compat.groups], for --host-profile
};

absl::string_view FormatName(SpecFormat f) {
  switch (f) {
    case SpecFormat::kKeyValueGroups:
      return "keyValueGroups";
    case SpecFormat::kNfd:
      return "nfd";
    case SpecFormat::kAuto:
      break;
  }
  return "auto";
}

int Unreadable(absl::string_view message) {
  std::cerr << "imgsel: " << message << "\n";
  return 2;
}

int RunValidate(const ValidateFlags& f) {
  SpecFormat format = SpecFormat::kAuto;
  if (f.format == "nfd") format = SpecFormat::kNfd;
  if (f.format == "groups") format = SpecFormat::kKeyValueGroups;

  absl::StatusOr<std::string> bytes = ReadFileBounded(f.file, kMaxSpecFileBytes);
  if (!bytes.ok()) return Unreadable(bytes.status().message());

  std::optional<HostProfile> host;
  if (!f.host_profile.empty()) {
    absl::StatusOr<std::string> profile_bytes =
        ReadFileBounded(f.host_profile, kMaxHostProfileBytes);
    if (!profile_bytes.ok()) return Unreadable(profile_bytes.status().message());
    absl::StatusOr<HostProfile> parsed = ParseHostProfile(*profile_bytes, f.host_profile);
    if (!parsed.ok()) return Unreadable(parsed.status().message());
    host = std::move(*parsed);
  }

  // A .json file is held to JSON's grammar, as a node holds a +json layer.
  SpecCheck check = CheckCompatSpec(*bytes, format, absl::EndsWith(f.file, ".json"));
  int errors = 0;
  int warnings = 0;
  for (const SpecProblem& p : check.problems) {
    (p.severity == SpecProblem::Severity::kError ? errors : warnings)++;
  }
  std::optional<SpecResult> result;
  if (check.ok() && host) {
    absl::StatusOr<Config> config = LoadConfigFlag(f.config);
    if (!config.ok()) return Unreadable(config.status().message());
    result = EvaluateCompatSpec(*check.spec, *host, config->compat.groups);
  }
  const bool host_ok = !result || result->matched();
  const int exit_code = check.ok() && host_ok ? 0 : 1;

  if (f.output == "json") {
    JsonWriter out(2);
    out.BeginObject();
    out.Key("file").String(f.file);
    out.Key("valid").Bool(check.ok());
    if (check.ok()) {
      out.Key("format").String(FormatName(check.spec->format));
      out.Key("sets").Int(static_cast<int64_t>(check.spec->sets.size()));
    }
    out.Key("problems").BeginArray();
    for (const SpecProblem& p : check.problems) {
      out.BeginObject();
      out.Key("severity").String(p.severity == SpecProblem::Severity::kError ? "error" : "warning");
      out.Key("line").Int(p.pos.line);
      out.Key("column").Int(p.pos.column);
      out.Key("message").String(p.message);
      out.EndObject();
    }
    out.EndArray();
    if (result) {
      out.Key("hostMatches").Bool(result->matched());
      if (auto w = result->best_weight()) out.Key("weight").Int(*w);
      out.Key("compatibilities");
      WriteCompatResultJson(*result, out);
    }
    out.EndObject();
    std::cout << out.str() << "\n";
    return exit_code;
  }

  for (const SpecProblem& p : check.problems) {
    std::cout << Printable(FormatSpecProblem(f.file, p)) << "\n";
  }
  if (!check.ok()) {
    std::cout << f.file << ": invalid (" << errors << (errors == 1 ? " error" : " errors") << ", "
              << warnings << (warnings == 1 ? " warning" : " warnings") << ")\n";
    return exit_code;
  }
  size_t rules = 0;
  for (const CompatSet& s : check.spec->sets) rules += s.rules.size();
  std::cout << f.file << ": valid " << FormatName(check.spec->format) << " spec, "
            << check.spec->sets.size() << " compatibility set(s), " << rules << " rule(s)";
  if (warnings > 0) std::cout << ", " << warnings << " warning(s)";
  std::cout << "\n";
  if (result) {
    std::cout << "\n";
    for (absl::string_view line : absl::StrSplit(RenderCompatResultText(*result), '\n')) {
      if (!line.empty()) std::cout << Printable(line) << "\n";
    }
    if (auto w = result->best_weight()) {
      std::cout << "host " << f.host_profile << ": compatible, weight " << *w << "\n";
    } else {
      std::cout << "host " << f.host_profile << ": no compatibility set matches\n";
    }
  }
  return exit_code;
}

}  // namespace

void AddValidateCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<ValidateFlags>();
  CLI::App* cmd = app.add_subcommand(
      "validate", "Check a compatibility spec (NFD image-compatibility or key/value groups)");
  cmd->add_option("FILE", flags->file, "the spec, YAML or JSON (- for standard input)")->required();
  cmd->add_option("--output", flags->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_option("--format", flags->format, "auto, nfd or groups (Proposal F)")
      ->check(CLI::IsMember({"auto", "nfd", "groups"}));
  cmd->add_option(
      "--config", flags->config,
      "imgsel.toml whose [compat.groups] reads Proposal F groups (with --host-profile)");
  cmd->add_option("--host-profile", flags->host_profile,
                  "also evaluate the spec against this saved host profile (imgsel probe output)");
  cmd->callback([flags, &exit_code] { exit_code = RunValidate(*flags); });
}

}  // namespace imgsel::cli
