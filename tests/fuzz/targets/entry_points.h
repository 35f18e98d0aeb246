// The parsers of outside input, each behind one entry point taking arbitrary
// bytes: what the libFuzzer targets call, and what the regression replay
// (tests/fuzz/regression_test.cc) feeds its saved inputs through, so a
// crash found once stays covered by a normal ctest run.
//
//   name                what the bytes are              the parser
//   index               an OCI index / manifest list    ParseIndex, then Select and
//                                                       the explanations
//   host_profile        a host profile (JSON)           ParseHostProfile
//   config              imgsel.toml                     ParseConfig
//   compat_spec_yaml    an NFD compatibility spec       CheckCompatSpec, then
//                                                       EvaluateCompatSpec
//   compat_spec_json    the OCI JSON spec formats       CheckCompatSpec (each format)
//   reference           an image reference              registry::ParseReference
//   hosts_toml          containerd's hosts.toml         registry::ParseHostsToml
//   www_authenticate    a WWW-Authenticate header       registry::ParseWwwAuthenticate
//   docker_config       Docker's config.json            registry::DockerConfig::Parse
//   referrers           a referrers listing or the      registry::ParseReferrersIndex
//                       tag schema's index
//   pull_request        a CRI PullImageRequest          plugin::ReadPullImageRequest,
//                                                       plugin::ReplacePullImageName
//
// Each entry point returns what is wrong with the parser's answer, beyond
// crashing (the sanitizers see that): empty when the bytes gave a value
// that holds the parser's promises (a round trip gives it back, a rewrite
// keeps what it must) or an error whose message names the input. A fuzz
// target aborts on a non-empty answer; the replay test fails on it.
//
// Pure functions of the bytes; thread-safe.
#pragma once

#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace imgsel::fuzz {

struct FuzzEntryPoint {
  absl::string_view name;  // "index": the target is fuzz_index, its corpus corpus/index/
  std::string (*run)(absl::string_view bytes);
};

// Every entry point, in the order of the table above.
absl::Span<const FuzzEntryPoint> EntryPoints();

// The entry point called `name`, or nullptr.
const FuzzEntryPoint* FindEntryPoint(absl::string_view name);

}  // namespace imgsel::fuzz
