// imgsel attach REF FILE...: attach a compatibility spec to an image already
// in a registry, without re-pushing the image (as `oras attach` does).
//
// The spec becomes the single layer of an OCI artifact manifest whose
// `subject` is REF's manifest or index, with the empty config and an
// org.opencontainers.image.created annotation. A registry without the
// referrers API gets the `sha256-<hex>` tag index updated too. Several
// files make one artifact with a layer each (Proposal G: one profile a
// layer), each layer's `name` annotation the file name before its first dot.
//
// Credentials come from the Docker config (--docker-config, default
// $DOCKER_CONFIG/config.json or ~/.docker/config.json); hosts come from a
// containerd certs.d tree (--hosts-dir).
//
// Each file is checked as `imgsel validate` checks it, for the format its
// media type holds, and its warnings printed; a spec nodes could not read
// is not attached.
//
// Exit: 0 attached; 1 the registry refused or failed; 2 bad input (the
//       reference, the file, a flag, a hosts.toml or Docker config).
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "cli/inputs.h"
#include "cli/registry_flags.h"
#include "cli/registry_wait.h"
#include "cli/text_output.h"
#include "matcher/compat_spec.h"
#include "oci/file_read.h"
#include "re2/re2.h"
#include "registry/attach.h"
#include "registry/client.h"
#include "registry/reference.h"
#include "selector/registry_options.h"

namespace imgsel::cli {
namespace {

struct AttachFlags {
  std::string ref;
  std::vector<std::string> files;
  std::string artifact_type = std::string(kNfdArtifactType);
  std::string media_type = std::string(kNfdSpecLayerType);
  std::vector<std::string> annotations;
  // --config, --hosts-dir, --plain-http, --docker-config, --timeout
  RegistryFlags registry{.timeout_seconds = 30};
};

int Fail(int code, absl::string_view message) {
  std::cerr << "imgsel attach: " << message << "\n";
  return code;
}

// type/subtype as RFC 6838 names them (what OCI requires of media types).
bool IsMediaType(absl::string_view s) {
  static const RE2 kMediaType(
      "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}");
  return RE2::FullMatch(re2::StringPiece(s.data(), s.size()), kMediaType);
}

// What nodes will read, checked as `imgsel validate` does (budget
// included), before anything is pushed: a spec they cannot read makes
// their selections fall back. Problems are printed as validate prints
// them, warnings too (a name no table knows is accepted but matches no
// host). False on an error. A media type imgsel does not read is not
// checked.
bool CheckSpecFile(const std::string& file, absl::string_view content,
                   const std::string& media_type) {
  std::optional<SpecFormat> format = SpecFormatForMediaType(media_type);
  if (!format) return true;
  SpecCheck check = CheckCompatSpec(content, *format, IsJsonMediaType(media_type));
  for (const SpecProblem& p : check.problems) {
    std::cerr << Printable(FormatSpecProblem(file, p)) << "\n";
  }
  return check.ok();
}

int RunAttach(const AttachFlags& f) {
  auto ref = registry::ParseReference(f.ref);
  if (!ref.ok()) return Fail(2, ref.status().message());
  if (absl::Status s = CheckTimeoutFlag(f.registry.timeout_seconds); !s.ok()) {
    return Fail(2, s.message());
  }
  auto config = LoadConfigFlag(f.registry.config);
  if (!config.ok()) return Fail(2, config.status().message());
  if (absl::Status s = ApplyRegistryFlags(f.registry, &*config); !s.ok()) {
    return Fail(2, s.message());
  }
  if (!IsMediaType(f.artifact_type)) {
    return Fail(2, absl::StrCat("--artifact-type \"", f.artifact_type, "\": not a media type"));
  }
  if (!IsMediaType(f.media_type)) {
    return Fail(2, absl::StrCat("--media-type \"", f.media_type, "\": not a media type"));
  }
  // Several files: one layer each, named after its file (Proposal G's one
  // profile a layer); one file: one layer, as before.
  std::vector<std::string> contents;
  std::vector<registry::AttachLayer> layers;
  std::set<std::string> names;
  for (const std::string& file : f.files) {
    auto content = ReadFileBounded(file, kMaxSpecFileBytes);
    if (!content.ok()) return Fail(2, content.status().message());
    contents.push_back(*std::move(content));
    if (!CheckSpecFile(file, contents.back(), f.media_type)) {
      return Fail(2, absl::StrCat(file, ": not a valid compatibility spec; nothing attached"));
    }
    const std::string title = file == "-" ? "" : file.substr(file.rfind('/') + 1);
    std::string name;
    if (f.files.size() > 1) {
      name = title.substr(0, title.find('.'));
      if (name.empty() || !names.insert(name).second) {
        return Fail(2, absl::StrCat(file,
                                    ": each profile needs a file name of its own (the "
                                    "layer's name annotation is the name before the first dot)"));
      }
    }
    layers.push_back({"", std::move(name), title});
  }
  for (size_t i = 0; i < layers.size(); ++i) layers[i].content = contents[i];
  if (std::optional<SpecFormat> format = SpecFormatForMediaType(f.media_type); !format) {
    std::cerr << "imgsel attach: warning: imgsel does not read layers of type " << f.media_type
              << ": nodes list this artifact as not read, and it changes nothing for them\n";
  }

  registry::AttachOptions options;
  options.artifact_type = f.artifact_type;
  options.layer_media_type = f.media_type;
  for (const std::string& a : f.annotations) {
    size_t eq = a.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(2, absl::StrCat("--annotation \"", a, "\": want key=value"));
    }
    options.annotations.emplace_back(a.substr(0, eq), a.substr(eq + 1));
  }

  // The config's [registry] table with the flags over it; --timeout bounds
  // each request (an upload can take its time; a hung one cannot).
  registry::ClientOptions client_options = RegistryClientOptions(config->registry);
  client_options.request_timeout = absl::Seconds(f.registry.timeout_seconds);
  auto client = registry::RegistryClient::Create(client_options);
  if (!client.ok()) return Fail(2, client.status().message());

  absl::StatusOr<registry::AttachResult> result;
  {
    RegistryWaitNotice notice(client->get());
    result = registry::AttachLayers(**client, *ref, layers, options);
  }
  if (!result.ok()) {
    // A hosts.toml or Docker config that does not read is the caller's input.
    const bool bad_input = result.status().code() == absl::StatusCode::kInvalidArgument;
    return Fail(bad_input ? 2 : 1, result.status().message());
  }
  std::cout << "Attached " << result->manifest_digest << " to " << ref->Name() << "@"
            << result->subject_digest << "\n";
  if (result->via_tag_schema) {
    std::cout << "The registry has no referrers API: updated tag "
              << registry::ReferrersTag(result->subject_digest) << "\n";
  }
  return 0;
}

}  // namespace

void AddAttachCommand(CLI::App& app, int& exit_code) {
  auto flags = std::make_shared<AttachFlags>();
  CLI::App* cmd = app.add_subcommand(
      "attach", "Attach a compatibility spec to an image in a registry (an OCI referrer)");
  cmd->add_option("REF", flags->ref, "the image: registry/repository:tag or @sha256:...")
      ->required();
  cmd->add_option("FILE", flags->files,
                  "the spec to attach (- for standard input); several: one layer each, named "
                  "after its file (one profile a layer)")
      ->required();
  cmd->add_option("--artifact-type", flags->artifact_type, "the artifact's artifactType")
      ->capture_default_str();
  cmd->add_option("--media-type", flags->media_type, "the media type of the spec layer")
      ->capture_default_str();
  cmd->add_option("--annotation", flags->annotations,
                  "key=value on the artifact manifest (repeatable)");
  AddRegistryFlags(cmd, &flags->registry, "seconds per registry request (0.001-3600, default 30)");
  cmd->callback([flags, &exit_code] { exit_code = RunAttach(*flags); });
}

}  // namespace imgsel::cli
