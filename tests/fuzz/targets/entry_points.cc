#include "tests/fuzz/targets/entry_points.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "config/config.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_spec.h"
#include "matcher/decision_json.h"
#include "matcher/host_profile.h"
#include "matcher/index.h"
#include "matcher/select.h"
#include "oci/digest.h"
#include "plugin/pull_request.h"
#include "registry/auth.h"
#include "registry/hosts.h"
#include "registry/reference.h"
#include "registry/referrers.h"

namespace imgsel::fuzz {
namespace {

// An error must say what was read: the source name the caller gave leads.
std::string ErrorNamesSource(const absl::Status& status, absl::string_view source) {
  if (status.message().empty()) return absl::StrCat("error without a message: ", status.code());
  if (!absl::StartsWith(status.message(), source)) {
    return absl::StrCat("error does not name \"", source, "\": ", status.message());
  }
  return "";
}

bool HasControlCharacter(absl::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return true;
  }
  return false;
}

const HostProfile& Host() {
  static const HostProfile* host = [] {
    auto* h = new HostProfile;
    h->platform = {.os = "linux", .architecture = "amd64", .variant = "v3"};
    h->features = {"avx2", "bmi2"};
    h->nfd.attributes["kernel.version"] = {{"major", "6"}, {"full", "6.1.0"}};
    h->nfd.flags["cpu.cpuid"] = {"AVX2"};
    h->nfd.instances["pci.device"] = {{{"vendor", "10de"}, {"class", "0300"}}};
    return h;
  }();
  return *host;
}

std::string Index(absl::string_view bytes) {
  auto index = ParseIndex(bytes, "fuzz-index.json");
  if (!index.ok()) return ErrorNamesSource(index.status(), "fuzz-index.json");
  Policy policy;
  PreferRule rule;
  rule.annotation = "com.example.gpu";
  rule.value = "nvidia";
  rule.weight = 10;
  policy.prefer.push_back(rule);
  const size_t entries = index->manifests.size();
  for (PolicyKind kind : {PolicyKind::kBest, PolicyKind::kFirstMatch}) {
    Decision d = Select(*index, Host(), policy, {.kind = kind});
    if (!d.nothing_to_choose && d.candidates.size() != entries) {
      return absl::StrCat(d.candidates.size(), " candidates for ", entries, " entries");
    }
    for (const Candidate& c : d.candidates) {
      if (c.position >= entries) return absl::StrCat("candidate position ", c.position);
      if (ExplainCandidate(d, c).empty()) {
        return absl::StrCat("no explanation for entry ", c.position);
      }
    }
    if (DecisionToJson(d).empty()) return "empty decision JSON";
  }
  return "";
}

std::string HostProfileEntry(absl::string_view bytes) {
  auto profile = ParseHostProfile(bytes, "fuzz-profile.json");
  if (!profile.ok()) return ErrorNamesSource(profile.status(), "fuzz-profile.json");
  // What `imgsel probe` prints, `--host-profile` reads back unchanged.
  const std::string json = HostProfileToJson(*profile);
  auto again = ParseHostProfile(json, "round-trip.json");
  if (!again.ok())
    return absl::StrCat("printed profile does not parse: ", again.status().message());
  if (HostProfileToJson(*again) != json) return "profile changes when printed and read back";
  return "";
}

std::string ConfigEntry(absl::string_view bytes) {
  auto config = ParseConfig(bytes, "fuzz.toml");
  if (!config.ok()) return ErrorNamesSource(config.status(), "fuzz.toml");
  for (const auto& [handler, unused] : config->handlers) (void)config->PolicyFor(handler);
  return "";
}

std::string CheckSpec(absl::string_view bytes, SpecFormat format) {
  SpecCheck check = CheckCompatSpec(bytes, format);
  bool has_error = false;
  for (const SpecProblem& p : check.problems) {
    if (p.message.empty()) return "a problem without a message";
    has_error |= p.severity == SpecProblem::Severity::kError;
  }
  if (check.ok() == has_error) {
    return has_error ? "a spec returned alongside errors" : "no spec and no error";
  }
  if (check.spec) {
    SpecResult result = EvaluateCompatSpec(*check.spec, Host());
    if (result.sets.size() != check.spec->sets.size()) return "a set without a result";
    (void)RenderCompatResultText(result);
  }
  return "";
}

std::string CompatSpecYaml(absl::string_view bytes) { return CheckSpec(bytes, SpecFormat::kAuto); }

std::string CompatSpecJson(absl::string_view bytes) {
  for (SpecFormat format : {SpecFormat::kAuto, SpecFormat::kNfd, SpecFormat::kKeyValueGroups}) {
    if (std::string problem = CheckSpec(bytes, format); !problem.empty()) return problem;
  }
  return "";
}

std::string ReferenceEntry(absl::string_view bytes) {
  auto ref = registry::ParseReference(bytes);
  if (!ref.ok()) {
    return ref.status().message().empty() ? "error without a message" : "";
  }
  // The normal form is a reference that names the same image.
  const std::string normal = ref->String();
  auto again = registry::ParseReference(normal);
  if (!again.ok()) {
    return absl::StrCat("normal form \"", normal, "\" does not parse: ", again.status().message());
  }
  if (again->registry != ref->registry || again->repository != ref->repository ||
      again->tag != ref->tag || again->digest != ref->digest) {
    return absl::StrCat("normal form \"", normal, "\" names another image");
  }
  if (!ref->digest.empty() && !ValidateDigest(ref->digest).ok()) return "an invalid digest kept";
  return "";
}

std::string HostsToml(absl::string_view bytes) {
  auto endpoints = registry::ParseHostsToml(bytes, "hosts.toml", "/etc/containerd/certs.d/x",
                                            "registry.example.com", false);
  if (!endpoints.ok()) return ErrorNamesSource(endpoints.status(), "hosts.toml");
  if (endpoints->empty()) return "no endpoint, not even the registry itself";
  for (const registry::RegistryEndpoint& ep : *endpoints) {
    if (!absl::StartsWith(ep.api_root, "https://") && !absl::StartsWith(ep.api_root, "http://")) {
      return absl::StrCat("api_root \"", ep.api_root, "\" is not http(s)");
    }
    // Each header is one line of the request: a line break in it would
    // start a header the file never declared.
    for (const std::string& h : ep.headers) {
      const size_t colon = h.find(':');
      if (colon == 0 || colon == std::string::npos)
        return absl::StrCat("header without a name: ", h);
      for (char c : absl::string_view(h).substr(0, colon)) {
        if (!absl::ascii_isgraph(c)) return absl::StrCat("header name not a token: ", h);
      }
      if (HasControlCharacter(absl::StrReplaceAll(h, {{"\t", " "}}))) {
        return absl::StrCat("header with a control character: ", absl::CHexEscape(h));
      }
    }
  }
  return "";
}

std::string WwwAuthenticate(absl::string_view bytes) {
  for (const registry::Challenge& c : registry::ParseWwwAuthenticate(bytes)) {
    if (c.scheme.empty()) return "a challenge without a scheme";
    if (absl::AsciiStrToLower(c.scheme) != c.scheme) return "scheme not lowercased";
    for (const auto& [name, value] : c.params) {
      if (name.empty()) return "a parameter without a name";
      if (absl::AsciiStrToLower(name) != name) return "parameter name not lowercased";
    }
  }
  return "";
}

std::string DockerConfigEntry(absl::string_view bytes) {
  auto config = registry::DockerConfig::Parse(bytes, "config.json");
  if (!config.ok()) return ErrorNamesSource(config.status(), "config.json");
  for (absl::string_view host : {"docker.io", "registry.example.com", "localhost:5000"}) {
    registry::Credentials c = config->For(host);
    for (const std::string* field :
         {&c.username, &c.password, &c.identity_token, &c.registry_token}) {
      if (HasControlCharacter(*field)) return "credentials with a control character";
    }
  }
  return "";
}

std::string Referrers(absl::string_view bytes) {
  size_t admitted = 0;
  auto admit = [&](size_t n) {
    admitted = n;
    return n > registry::kMaxListingEntries
               ? absl::ResourceExhaustedError("fuzz-referrers: too many descriptors")
               : absl::OkStatus();
  };
  auto list =
      registry::ParseReferrersIndex(bytes, "fuzz-referrers", registry::kMaxListingBytes, admit);
  if (!list.ok()) return ErrorNamesSource(list.status(), "fuzz-referrers");
  if (list->size() > admitted) return "more descriptors kept than admitted";
  for (const registry::ArtifactDescriptor& a : *list) {
    if (!ValidateDigest(a.digest).ok() || a.size < 0) return "a bad descriptor kept";
  }
  // What the cache writes, a read of the cache takes back unchanged.
  const std::string cached = registry::ReferrersIndexJson(*list);
  auto again = registry::ParseReferrersIndex(cached, "cached", registry::kMaxListingBytes * 2,
                                             [](size_t) { return absl::OkStatus(); });
  if (!again.ok()) return absl::StrCat("cached listing does not parse: ", again.status().message());
  if (again->size() != list->size()) return "cached listing lost descriptors";
  for (size_t i = 0; i < list->size(); ++i) {
    const registry::ArtifactDescriptor& a = (*list)[i];
    const registry::ArtifactDescriptor& b = (*again)[i];
    if (a.digest != b.digest || a.size != b.size || a.media_type != b.media_type ||
        a.artifact_type != b.artifact_type || a.annotations != b.annotations) {
      return absl::StrCat("cached listing changed descriptor ", i);
    }
  }
  return "";
}

std::string PullRequest(absl::string_view bytes) {
  auto fields = plugin::ReadPullImageRequest(bytes);
  if (!fields.ok() && fields.status().message().empty()) return "error without a message";
  constexpr absl::string_view kPinned =
      "registry.example.com/"
      "app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  auto rewritten = plugin::ReplacePullImageName(bytes, kPinned);
  if (!rewritten.ok()) {
    return rewritten.status().message().empty() ? "error without a message" : "";
  }
  if (!fields.ok()) return "";
  // containerd must see the pinned name and everything else kubelet sent.
  auto after = plugin::ReadPullImageRequest(*rewritten);
  if (!after.ok()) return absl::StrCat("rewritten request unreadable: ", after.status().message());
  if (after->image != kPinned) return absl::StrCat("rewritten image is \"", after->image, "\"");
  if (after->runtime_handler != fields->runtime_handler) return "runtime handler changed";
  if (after->credentials.Fingerprint() != fields->credentials.Fingerprint()) {
    return "credentials changed";
  }
  return "";
}

constexpr FuzzEntryPoint kEntryPoints[] = {
    {"index", Index},
    {"host_profile", HostProfileEntry},
    {"config", ConfigEntry},
    {"compat_spec_yaml", CompatSpecYaml},
    {"compat_spec_json", CompatSpecJson},
    {"reference", ReferenceEntry},
    {"hosts_toml", HostsToml},
    {"www_authenticate", WwwAuthenticate},
    {"docker_config", DockerConfigEntry},
    {"referrers", Referrers},
    {"pull_request", PullRequest},
};

}  // namespace

absl::Span<const FuzzEntryPoint> EntryPoints() { return kEntryPoints; }

const FuzzEntryPoint* FindEntryPoint(absl::string_view name) {
  for (const FuzzEntryPoint& e : kEntryPoints) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

}  // namespace imgsel::fuzz
