// Evaluating compatibility specs against a host, with NFD's semantics.
//
// A spec (compat_spec.h) holds compatibility sets, which are alternatives:
//
//   set matches   <=> every rule of the set matches
//   rule matches  <=> all its matchFeatures terms match (AND; none: true)
//                     and one of its matchAny elements matches (OR; none: true)
//   term matches  <=> the feature exists on the host and its matchExpressions
//                     and its matchName both match
//
// How one term is matched depends on the kind of feature (HostProfile::nfd):
//
//   flags       cpu.cpuid, kernel.loadedmodule    an element exists iff it is
//               in the set; it has no value, so only Exists / DoesNotExist /
//               Any can be true (In, NotIn, ... are false, as in NFD)
//   attributes  kernel.version, cpu.model         by the element's value
//   instances   pci.device, usb.device            ONE instance must satisfy ALL
//               expressions of the term
//
// A feature present both as flags and attributes is one union (NFD's
// MatchMulti): each expression must match in either, DoesNotExist in both.
// matchName applies its expression to the element names (of instances:
// to their attribute names) and matches when at least one name does.
// A feature the host does not have fails the term. Feature names are
// compared lowercased, element names as written.
//
// One deviation from NFD, on purpose: where NFD aborts the whole evaluation
// with an error (a host value that is not a number for Gt, say), the
// expression here simply does not match and says why; a broken host value
// must never break a pull.
//
// Proposal F sets hold `group.key: value` pairs; each must equal, as text,
// the host's value for it. Groups the operator names as NFD's (GroupPolicy
// nfd_groups: "nfd", "io.kubernetes.nfd", "feature.node.kubernetes.io" by
// default) hold NFD label names (`cpu-cpuid.AVX512F`), read from the labels
// NFD would publish for the host (nfd_labels.h; an absent flag label is
// "false"). Other groups read host attributes, in this order:
//   1. nfd.attributes["local.feature"][<group.key>]  (operator `[host]
//      attributes` and hook output land there)
//   2. nfd.attributes[<feature>][<element>], the feature being everything
//      before the last dot (`kernel.version.major` -> kernel.version, major)
//   3. nfd.flags[<feature>]: "true" when the element is in the set, "false"
//      when the feature is known but the element is not
// Whether a key is a requirement (a mismatch fails its set) or optional (a
// match adds optional_key_weight to its set's weight) and what a required
// key found nowhere does are the operator's GroupPolicy (policy.h); the
// default makes every key a requirement and a key found nowhere a failure.
//
// From specs to a CompatVerdict (select.h) for one index entry. The one rule
// of artifacts, which the pipeline (selector/pipeline.cc) and the registry
// listing helper (registry::NewestOfEachReadableKind) apply through
// NewestOfEachKind:
//   - Artifacts are attached to the entry's digest or to the index's digest.
//   - An artifact's kind is what imgsel can read in it: its artifactType and
//     the media types of its layers that imgsel reads (ArtifactKind). Layers
//     of other media types are not for imgsel: they are listed ("not read:
//     media type X") and change nothing. An artifact with no layer imgsel
//     reads has no kind: it is listed, never evaluated, never "newer" than
//     anything, never a failure.
//   - Per subject and kind, only the newest by `org.opencontainers.image.created`
//     (or `oci.opencontainers.image.created`, NFD's spelling) is used; one
//     without a time is older than any with one.
//   - One artifact may hold several specs (one layer per profile); its sets
//     are pooled: the artifact passes when any set of any of its specs matches.
//   - The entry passes when EVERY artifact that applies to it passes (the
//     index's and its own): an entry's requirements cannot be bypassed by a
//     looser index-level spec.
//   - Weight: the maximum `weight` among all matching sets of those artifacts
//     (not a sum, so one requirement stated at two levels is not counted
//     twice).
//   - Base images (selector/base_images.h): the artifacts of the image the
//     entry was built FROM, and of its base in turn, apply too (from_base
//     names the base). The entry passes only when they pass as well, and
//     each base adds its own best weight to the entry's: a base is another
//     image, whose preference is its own, not a restatement of the
//     derived image's.
//
// All functions are pure and thread-safe; results own their strings.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "matcher/compat_spec.h"
#include "matcher/host_profile.h"
#include "matcher/policy.h"
#include "matcher/select.h"
#include "oci/json_writer.h"

namespace imgsel {

// One expression as validate-node reports it.
struct ExpressionResult {
  std::string feature;       // "cpu.cpuid"; Proposal F: the group ("kernel")
  std::string element;       // "AVX2"; empty for matchName; Proposal F: the key
  std::string expression;    // "{op: In, value: [Intel, AMD]}"; Proposal F: "== 6"
  std::string matcher_type;  // "matchExpression", "matchName" or "keyValue"
  bool matched = false;
  std::string detail;  // why not, or the host value: "host: 5.4.0", "feature not on host"
  // False for a Proposal F key that does not decide its set (an optional
  // group's, or an unknown key passed over): shown, never the failure named.
  bool decides = true;
  MatchOp op = MatchOp::kExists;
  std::vector<std::string> values;
  ValueType type = ValueType::kDefault;
};

struct AnyElemResult {
  bool matched = false;
  std::vector<ExpressionResult> expressions;
};

struct RuleResult {
  std::string name;
  bool matched = false;
  std::vector<ExpressionResult> match_features;
  std::vector<AnyElemResult> match_any;
};

struct SetResult {
  size_t index = 0;  // position in the spec
  bool matched = false;
  int64_t weight = 0;
  std::string tag;
  std::string description;
  std::vector<RuleResult> rules;  // Proposal F: one rule named "groups"
};

struct SpecResult {
  std::string name;  // the spec's profile name, if any
  std::vector<SetResult> sets;

  bool matched() const;
  // The highest weight among matching sets; nullopt when none matches.
  std::optional<int64_t> best_weight() const;
};

// Evaluates every set and every expression (no short cut, so the result
// tree is complete for display). Proposal F groups are read under `groups`
// (policy.h): which groups are requirements, what a matching optional key
// weighs (added to its set's weight), what a key the host has no value for
// does, and which groups hold NFD label names (nfd_labels.h).
SpecResult EvaluateCompatSpec(const CompatSpec& spec, const HostProfile& host,
                              const GroupPolicy& groups = {});

// The result as `nfd compat validate-node` prints it, in plain text:
//   COMPATIBILITY SET #1 Weight: 10; Tag: avx512
//   Description: AVX-512 build
//     RULE: CPU AND KERNEL - OK
//       cpu.cpuid.AVX512F     {op: Exists}   matchExpression   OK
//       kernel.version.full   {op: Ge, value: [5.15], type: version}   matchExpression   FAIL
//       (host: 5.4.0)
std::string RenderCompatResultText(const SpecResult& result);

// The result as JSON, with validate-node's field names (`rules`, `isMatch`,
// `matchedExpressions`, `matchedAny`, `matcherType`, ...), as an array of sets.
void WriteCompatResultJson(const SpecResult& result, JsonWriter& out);

// ---- artifacts ----

// One compatibility artifact attached to a subject, already parsed.
struct CompatArtifact {
  std::string id;    // the artifact manifest digest, for reasons
  std::string kind;  // ArtifactKind; empty: nothing in it imgsel reads
  std::map<std::string, std::string> annotations;
  std::vector<CompatSpec> specs;      // one per layer / profile imgsel reads
  std::vector<std::string> not_read;  // media types of the layers it does not read
};

// The kind of an artifact from its artifactType and its layers' media types:
// "<artifactType> <media type>[,<media type>...]" over the layer media types
// imgsel reads (SpecFormatForMediaType), sorted and without repeats; empty
// when it reads none, and then the artifact is not for imgsel.
std::string ArtifactKind(absl::string_view artifact_type,
                         absl::Span<const std::string> layer_media_types);

// The layer media types of `layer_media_types` imgsel does not read, in
// order, without repeats: what an explanation lists as "not read".
std::vector<std::string> UnreadMediaTypes(absl::Span<const std::string> layer_media_types);

// "The newest artifact of a kind", the one rule, for any list of `count`
// artifacts: for each non-empty kind (`kind_of(i)`), the one with the latest
// `created_of(i)`; one without a time is older than any with one; among
// equals the first listed wins. An empty kind (nothing imgsel reads) is
// never chosen and never hides another. Returns indexes, in the order the
// kinds first appear. The pipeline applies it to the kinds of listed
// artifacts (read from their manifests) to choose whose layers to fetch,
// and NewestArtifacts to what was fetched.
std::vector<size_t> NewestOfEachKind(
    size_t count, absl::FunctionRef<absl::string_view(size_t)> kind_of,
    absl::FunctionRef<std::optional<absl::Time>(size_t)> created_of);

// NewestOfEachKind over CompatArtifact::kind and ArtifactCreated.
std::vector<size_t> NewestArtifacts(absl::Span<const CompatArtifact> artifacts);

struct ArtifactResult {
  std::string id;
  std::string kind;       // empty: nothing in it imgsel reads (then not evaluated)
  bool on_index = false;  // attached to the index rather than the entry
  // Non-empty: attached to this base image of the entry
  // ("docker.io/library/debian@sha256:..."), not to the image itself.
  std::string from_base;
  std::vector<std::string> not_read;  // media types of layers not read
  bool matched = false;
  std::optional<int64_t> weight;  // best matching set
  std::vector<SpecResult> specs;
};

struct EntryCompat {
  CompatVerdict verdict;
  // Those evaluated (newest per kind), then those with nothing imgsel reads.
  std::vector<ArtifactResult> artifacts;
};

// One artifact against the host: every spec, the best matching weight. An
// artifact without a kind gives a result with its `not_read` and nothing
// else, which CombineArtifactResults lists and does not count.
ArtifactResult EvaluateArtifact(const CompatArtifact& artifact, bool on_index,
                                const HostProfile& host, const GroupPolicy& groups = {});

// The verdict for one entry from the results of the artifacts that apply to
// it (already the newest of each kind): it passes when every artifact imgsel
// reads has a matching set, and earns the highest matching weight of the
// image's own artifacts plus, for each base (from_base), the highest of
// that base's. Each
// result gives one reason; layers and artifacts not read are named there
// ("not read: media type text/plain") and change nothing.
CompatVerdict CombineArtifactResults(absl::Span<const ArtifactResult* const> results);

// Evaluates the artifacts that apply to one entry (rules in the header
// comment). With no artifact at all the verdict passes with weight 0 and no
// reasons; callers should then pass no verdict to Select at all.
EntryCompat EvaluateEntryCompat(absl::Span<const CompatArtifact> entry_artifacts,
                                absl::Span<const CompatArtifact> index_artifacts,
                                const HostProfile& host, const GroupPolicy& groups = {});

}  // namespace imgsel
