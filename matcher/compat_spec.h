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
// The budget of one spec. A spec is written by whoever can push to a
// repository and read by every node that pulls from it, so its cost is
// capped where it is read: in CheckCompatSpec, hence in ParseCompatSpec,
// `imgsel validate`, `imgsel attach` (before anything is pushed) and the
// nodes, identically. A spec past any limit is an error naming the limit and
// the place (line:column, and set, rule, feature and element where they
// apply), and nothing after that place is read. The limits and why each has
// its value are the constants below; docs/compatibility.md has the table.
//
// YAML anchors (&a) and aliases (*a) are refused outright, at the first one,
// while the text is parsed (matcher/yaml_tree.h), rather than counted after
// expansion. Nothing NFD's spec needs is lost: anchors only save an author
// typing, and the JSON media types cannot hold them. Counting instead would
// have to follow shared nodes and cycles (yaml-cpp makes `&a [*a]` a cycle),
// and NFD's Go reader also honours `<<` merge keys through aliases, which
// yaml-cpp does not: a spec with aliases could mean one thing to NFD and
// another here. Refused, the node count is the text's own, and it is
// counted as the text is read. Nesting: the schema is walked to its fixed
// depth only, and yaml-cpp's depth guard refuses documents nested deeper
// than it parses safely.
//
// Regexps (RE2, linear-time matching) are compiled at parse time, each with
// RE2 max_mem kMaxCompatRegexpMemory (RE2 stops compiling past it, so a
// pattern like `\pL{200}` fails in about 2 ms instead of compiling for 90
// and keeping 2 MB), and the spec's regexps together may count at most
// kMaxCompatRegexps and kMaxCompatRegexpProgramSize RE2 instructions
// (RE2::ProgramSize).
//
// Weights: each set's weight lies within +-kMaxPreferenceWeight
// (matcher/policy.h), as the config's [[prefer]] weights do, so no score
// can overflow.
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
#include "oci/media_types.h"

namespace re2 {
class RE2;
}

namespace imgsel {

// ---- The budget of one spec (see above; docs/compatibility.md) ----
//
// The largest spec all of these allow is checked in well under 100 ms
// (bench/compat_bench.cc BM_CheckLargestSpec, docs/BENCHMARKS.md); a
// realistic spec (tests/data/compat/realistic.yaml: 2.9 KB, 346 nodes, 28
// expressions, 3 regexps of 4 instructions) uses under 5% of each.

// Text. Bounds what the YAML scanner reads and what scalars may hold: 90
// times the realistic spec; a spec of 256 KiB is a generated one.
inline constexpr size_t kMaxCompatSpecBytes = 256 << 10;
// YAML nodes: every scalar (map keys included), null, sequence and map.
// Bounds parse time (~1-2 us a node) and memory (the tree, then the spec, a
// few hundred bytes a node at most): 47 times the realistic spec.
inline constexpr size_t kMaxCompatYamlNodes = 16384;
// Sets and rules: each is a line of validate-node output; beyond these no
// person reads the result.
inline constexpr size_t kMaxCompatSets = 256;
inline constexpr size_t kMaxCompatRulesPerSet = 256;
// matchExpressions entries, matchName and group keys in all: evaluation
// work per host is proportional to them. 36 times the realistic spec.
inline constexpr size_t kMaxCompatExpressions = 1024;
// Values of one expression: room for a list of every PCI device id of a
// vendor's product line, which is what long In lists hold.
inline constexpr size_t kMaxCompatValues = 1024;
// InRegexp values in all. Each regexp may keep up to its RE2 max_mem at
// evaluation (program and DFA cache), so this times kMaxCompatRegexpMemory
// (16 MiB) bounds the memory of one parsed spec's regexps.
inline constexpr size_t kMaxCompatRegexps = 64;
// RE2 max_mem of one regexp (RE2's default is 8 MiB): a program of about
// 21,000 instructions, twenty times `[a-z]{1000}` (1,004) and thousands of
// times a realistic pattern; a pattern that needs more stops compiling there
// (~2 ms) and ends the reading.
inline constexpr int64_t kMaxCompatRegexpMemory = 256 << 10;
// RE2 instructions (RE2::ProgramSize) of all regexps of a spec together:
// bounds compile time (~0.3 us an instruction, ~10 ms in all) so a spec
// cannot spend its kMaxCompatRegexps each at the edge of its memory.
inline constexpr int64_t kMaxCompatRegexpProgramSize = 32768;

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
  // NFD back-references: when the rule matches, its `labels` and `vars`
  // become elements of the attribute feature `rule.matched`, which later
  // rules (of this set and of the sets after it, as in NFD's validate-node)
  // may match on. In the order written.
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<std::pair<std::string, std::string>> vars;
  SourcePos pos;
};

// The feature NFD's back-references live in.
inline constexpr absl::string_view kRuleMatchedFeature = "rule.matched";

// Proposal F: `key` is "<group>.<key>", `value` the text to equal.
struct GroupRequirement {
  std::string key;
  std::string value;
  SourcePos pos;
  std::string group;  // "<group>"
  std::string name;   // "<key>"
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
//
// With `strict_json` (a layer of a `+json` media type, a `.json` file) the
// bytes must first be JSON, strictly: a missing brace or a trailing comma
// is one error at the byte where it is found ("not JSON: expected ',' or
// '}' (byte 212)", with its line and column), and nothing else is read.
// Without it JSON is read as the YAML it also is.
SpecCheck CheckCompatSpec(absl::string_view bytes, SpecFormat format = SpecFormat::kAuto,
                          bool strict_json = false);

// Whether a layer media type says JSON (`+json`): its specs are strict JSON.
bool IsJsonMediaType(absl::string_view media_type);

// CheckCompatSpec for callers that only want a spec: the errors joined into
// one InvalidArgument status, each "source:line:column: error: message"; past
// the first 10, only their number ("; and 25 more errors").
absl::StatusOr<CompatSpec> ParseCompatSpec(absl::string_view bytes, SpecFormat format,
                                           absl::string_view source, bool strict_json = false);

// "source:12:5: error: message".
std::string FormatSpecProblem(absl::string_view source, const SpecProblem& problem);

}  // namespace imgsel
