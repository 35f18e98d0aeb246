// Compatibility specs: what an image author says a host must have.
//
// Two formats are understood, both read from bytes (YAML or JSON; JSON is
// read as YAML so every problem carries a line and a column):
//
// 1. Node Feature Discovery's image-compatibility spec (`version: v1alpha1`),
//    media types application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml
//    and application/vnd.oci.image-compatibility.nfd.v1alpha1+json:
//
//      version: v1alpha1
//      compatibilities:                      # alternatives: one must match
//      - description: "AVX-512 build"
//        weight: 10                          # preference among matching sets
//        tag: avx512
//        rules:                              # all rules must match
//        - name: "cpu and kernel"
//          matchFeatures:                    # all terms must match (AND)
//          - feature: cpu.cpuid
//            matchExpressions:               # element name -> expression
//              AVX512F: {op: Exists}
//          - feature: kernel.version
//            matchExpressions:
//              full: {op: Ge, value: ["5.15"], type: version}
//          - feature: cpu.cpuid
//            matchName: {op: InRegexp, value: ["^AVX512"]}   # on element names
//          matchAny:                         # one of these must match (OR)
//          - matchFeatures: [{feature: pci.device, matchExpressions: {vendor: {op: In, value:
//          ["10de"]}}}]
//
//    Operators and the number of values each takes (NFD's table):
//
//      op            values  true when the element ...
//      In            >= 1    exists and its value equals one of the values
//      NotIn         >= 1    exists and its value equals none (missing: false)
//      InRegexp      >= 1    exists and one RE2 pattern matches (unanchored)
//      Exists        0       exists
//      DoesNotExist  0       does not exist
//      Gt Ge Lt Le   1       exists and compares >, >=, <, <= to the value
//      GtLt          2       exists and lies strictly between the two values
//      GeLe          2       exists and lies between them, bounds included
//      IsTrue        0       exists and its value is "true"
//      IsFalse       0       exists and its value is "false"
//      Any           0       always (NFD accepts it; listed for completeness)
//
//    Comparisons are on integers (strconv.Atoi rules: optional sign, decimal
//    digits, 64-bit) or, with `type: version`, on versions
//    `v?MAJOR[.MINOR[.PATCH]][-pre][+build]` where the pre-release and build
//    parts are ignored, as NFD does (so kernel "6.8.0-45-generic" is 6.8.0).
//    For integer GtLt/GeLe the first value must be below the second.
//    A `value` written as one scalar is read as a one-element list.
//
// 2. Proposal F key/value groups (OCI image-compatibility working group),
//    media type application/vnd.oci.image-compatibility.spec.v1+json. The
//    proposal's own shape has no weights: one object of groups, each a map of
//    key -> value, read here as ONE set of weight 0:
//
//      {"compatibilities": {"nfd": {"kernel.version.major": 6}}}
//
//    Decision (the proposal leaves ranking open): `compatibilities` may also be
//    an array of sets, each with optional `weight`, `tag`, `description` and
//    a `groups` object of that same shape; the sets are alternatives like
//    NFD's. Every `<group>.<key>` must equal the host attribute of that name
//    (see compat_eval.h for the lookup). Values may be strings, numbers or
//    booleans; they are compared as the text written (`true`, `6`, `"4.1.6"`).
//
// Bounds (an artifact comes from outside): 1 MiB of text, 256 sets, 256 rules
// per set, 1024 expressions in all (matchExpressions entries, matchName and
// group keys), 1024 values per expression. Nesting: the schema is walked to
// its fixed depth only, and yaml-cpp's own depth guard rejects documents
// nested deeper than it can parse safely.
//
// Unknown keys are warnings, not errors (NFD ignores them too, and a newer
// spec must still be read); validate prints them so typos are seen.
//
// Contract: parsing never throws; all problems are returned, each with its
// 1-based line and column. A parsed CompatSpec is immutable and may be shared
// and evaluated from several threads at once (RE2 is thread-safe).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace re2 {
class RE2;
}

namespace imgsel {

inline constexpr size_t kMaxCompatSpecBytes = 1 << 20;
inline constexpr size_t kMaxCompatSets = 256;
inline constexpr size_t kMaxCompatRulesPerSet = 256;
inline constexpr size_t kMaxCompatExpressions = 1024;
inline constexpr size_t kMaxCompatValues = 1024;

// The artifact layer media types and what they hold.
inline constexpr absl::string_view kNfdSpecMediaType =
    "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml";
inline constexpr absl::string_view kOciNfdProfileMediaType =
    "application/vnd.oci.image-compatibility.nfd.v1alpha1+json";
inline constexpr absl::string_view kOciKeyValueSpecMediaType =
    "application/vnd.oci.image-compatibility.spec.v1+json";

// 1-based; 0 when unknown.
struct SourcePos {
  int line = 0;
  int column = 0;
};

enum class MatchOp {
  kIn,
  kNotIn,
  kInRegexp,
  kExists,
  kDoesNotExist,
  kGt,
  kGe,
  kLt,
  kLe,
  kGtLt,
  kGeLe,
  kIsTrue,
  kIsFalse,
  kAny,
};

// "In", "GtLt", ...; the spelling used in specs.
absl::string_view MatchOpName(MatchOp op);

enum class ValueType { kDefault, kVersion };

// The comparable core of a version; pre-release and build are dropped.
struct SpecVersion {
  uint64_t major = 0;
  uint64_t minor = 0;
  uint64_t patch = 0;
  friend auto operator<=>(const SpecVersion&, const SpecVersion&) = default;
};

// Parses `v?MAJOR[.MINOR[.PATCH]][-pre][+build]` (missing parts are 0).
std::optional<SpecVersion> ParseSpecVersion(absl::string_view text);
// Parses an integer as Go's strconv.Atoi does (sign, decimal digits, 64-bit).
std::optional<int64_t> ParseSpecInt(absl::string_view text);

struct MatchExpression {
  MatchOp op = MatchOp::kExists;
  ValueType type = ValueType::kDefault;
  std::vector<std::string> values;
  // Compiled at parse time, by op: InRegexp -> regexps; numeric ops -> ints
  // (kDefault) or versions (kVersion). Same order as `values`.
  std::vector<std::shared_ptr<const re2::RE2>> regexps;
  std::vector<int64_t> ints;
  std::vector<SpecVersion> versions;
  SourcePos pos;
};

// The expression as validate-node prints it: `{op: In, value: [Intel, AMD]}`.
std::string MatchExpressionString(const MatchExpression& e);

struct FeatureTerm {
  std::string feature;  // lowercased, as NFD looks it up ("cpu.cpuid")
  bool has_match_expressions = false;
  // Element name -> expression, in the order written.
  std::vector<std::pair<std::string, MatchExpression>> match_expressions;
  std::optional<MatchExpression> match_name;
  SourcePos pos;
};

struct CompatRule {
  std::string name;
  std::vector<FeatureTerm> match_features;          // AND
  std::vector<std::vector<FeatureTerm>> match_any;  // OR of ANDs
  SourcePos pos;
};

// Proposal F: `key` is "<group>.<key>", `value` the text to equal.
struct GroupRequirement {
  std::string key;
  std::string value;
  SourcePos pos;
};

struct CompatSet {
  std::vector<CompatRule> rules;         // NFD specs
  std::vector<GroupRequirement> groups;  // Proposal F specs
  int64_t weight = 0;
  std::string tag;
  std::string description;
  SourcePos pos;
};

enum class SpecFormat {
  kAuto,            // decide from the document (parse only)
  kNfd,             // NFD image-compatibility v1alpha1
  kKeyValueGroups,  // Proposal F
};

struct CompatSpec {
  SpecFormat format = SpecFormat::kNfd;
  std::string version;  // NFD: "v1alpha1"
  std::string name;     // profile name (layer annotation `name`); set by callers
  std::vector<CompatSet> sets;
};

struct SpecProblem {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  SourcePos pos;
  std::string message;
};

struct SpecCheck {
  std::optional<CompatSpec> spec;     // set iff there is no error
  std::vector<SpecProblem> problems;  // errors and warnings in document order

  bool ok() const { return spec.has_value(); }
};

// The format a layer media type holds, or nullopt for one we do not read.
std::optional<SpecFormat> SpecFormatForMediaType(absl::string_view media_type);

// Reads a spec and reports every problem found (schema, value counts,
// regexps, numbers, versions, bounds). Past a syntax error or a bound the
// rest of the document is not examined.
SpecCheck CheckCompatSpec(absl::string_view bytes, SpecFormat format = SpecFormat::kAuto);

// CheckCompatSpec for callers that only want a spec: the errors joined into
// one InvalidArgument status, each "source:line:column: message".
absl::StatusOr<CompatSpec> ParseCompatSpec(absl::string_view bytes, SpecFormat format,
                                           absl::string_view source);

// "source:12:5: error: message".
std::string FormatSpecProblem(absl::string_view source, const SpecProblem& problem);

}  // namespace imgsel
