// Compatibility rule engine throughput on a realistic NFD spec.
//
//   build/compat/bench/compat_bench
//
// The spec (tests/data/compat/realistic.yaml) has 3 sets, 9 rules and 28
// expressions over cpuid flags, cpu.model, kernel version (type: version),
// loaded modules, kernel config, pci.device instances and os-release, with
// matchAny and matchName. Hosts are the two saved profiles beside it.
//
// BM_ParseSpec: bytes -> CompatSpec (YAML, regexps compiled); paid once per
//   artifact digest, since parsed specs are cached.
// BM_EvaluateSpec: the full result tree for one host (every set and
//   expression evaluated, as validate-node shows it); paid per selection.
// BM_EntryVerdict: one entry with an index-level and an entry-level artifact
//   to a CompatVerdict, reasons included.
//
// The budget of a spec (compat_spec.h), what `imgsel validate` and every node
// pay at worst:
//
// BM_CheckLargestSpec: CheckCompatSpec (all of validate but reading the file
//   and printing) on the largest spec the budget allows: every limit at its
//   edge at once (LargestSpec below).
// BM_RefuseAliasBomb / BM_RefuseRegexpBomb: the two hostile specs of issue
//   14, refused.
//
// `compat_bench --write_largest_spec=FILE` writes that spec to FILE and
// exits, so the CLI itself can be timed on it (docs/BENCHMARKS.md).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_spec.h"
#include "matcher/host_profile.h"
#include "matcher/policy.h"
#include "matcher/yaml_tree.h"
#include "re2/re2.h"

namespace imgsel {
namespace {

std::string ReadData(const char* name) {
  std::ifstream in(std::string(IMGSEL_COMPAT_DATA) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

HostProfile Host(const char* name) {
  auto host = ParseHostProfile(ReadData(name), name);
  return host.ok() ? *host : HostProfile{};
}

CompatSpec RealisticSpec() {
  auto spec = ParseCompatSpec(ReadData("realistic.yaml"), SpecFormat::kNfd, "realistic.yaml");
  return spec.ok() ? *spec : CompatSpec{};
}

size_t CountExpressions(const CompatSpec& spec) {
  size_t n = 0;
  auto terms = [&n](const std::vector<FeatureTerm>& ts) {
    for (const FeatureTerm& t : ts) n += t.match_expressions.size() + (t.match_name ? 1 : 0);
  };
  for (const CompatSet& s : spec.sets) {
    for (const CompatRule& r : s.rules) {
      terms(r.match_features);
      for (const auto& any : r.match_any) terms(any);
    }
  }
  return n;
}

void BM_ParseSpec(benchmark::State& state) {
  const std::string bytes = ReadData("realistic.yaml");
  for (auto _ : state) {
    auto spec = ParseCompatSpec(bytes, SpecFormat::kNfd, "realistic.yaml");
    if (!spec.ok()) state.SkipWithError("spec does not parse");
    benchmark::DoNotOptimize(spec);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_ParseSpec);

void BM_EvaluateSpec(benchmark::State& state) {
  const CompatSpec spec = RealisticSpec();
  const HostProfile host = Host(state.range(0) == 0 ? "host_avx2.json" : "host_gpu.json");
  const size_t expressions = CountExpressions(spec);
  for (auto _ : state) {
    SpecResult result = EvaluateCompatSpec(spec, host);
    benchmark::DoNotOptimize(result);
  }
  state.counters["expressions/s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * expressions), benchmark::Counter::kIsRate);
  state.SetLabel(state.range(0) == 0 ? "avx2 host" : "gpu host");
}
BENCHMARK(BM_EvaluateSpec)->Arg(0)->Arg(1);

void BM_EntryVerdict(benchmark::State& state) {
  CompatArtifact index_artifact;
  index_artifact.id = "sha256:index";
  index_artifact.kind = "application/vnd.nfd.image-compatibility.v1alpha1";
  index_artifact.specs.push_back(RealisticSpec());
  CompatArtifact entry_artifact = index_artifact;
  entry_artifact.id = "sha256:entry";
  const std::vector<CompatArtifact> index = {index_artifact};
  const std::vector<CompatArtifact> entry = {entry_artifact};
  const HostProfile host = Host("host_avx2.json");
  for (auto _ : state) {
    EntryCompat c = EvaluateEntryCompat(entry, index, host);
    benchmark::DoNotOptimize(c);
  }
}
BENCHMARK(BM_EntryVerdict);

// The largest spec the budget allows, every limit at its edge at once:
// exactly kMaxCompatSpecBytes bytes and kMaxCompatYamlNodes nodes, 256 sets,
// 256 rules in the first, kMaxCompatExpressions expressions, one of them with
// kMaxCompatValues values, kMaxCompatRegexps regexps whose programs add up to
// kMaxCompatRegexpProgramSize instructions, one of them near its own memory
// limit (91% of it). Set #1 carries it all; sets #2..#256 are one empty rule each. The
// nodes left over are spread as values over the In expressions; a
// description fills the bytes up.
std::string LargestSpec() {
  // Regexps: literals, whose program size is their length plus a constant.
  const int64_t overhead = RE2("a").ProgramSize() - 1;
  std::vector<std::string> regexps;
  int64_t program = 0;
  for (size_t i = 1; i < kMaxCompatRegexps; ++i) {
    regexps.push_back(std::string(200, static_cast<char>('a' + i % 26)));
    program += 200 + overhead;
  }
  regexps.insert(
      regexps.begin(),
      std::string(static_cast<size_t>(kMaxCompatRegexpProgramSize - program - overhead), 'z'));
  std::string regexp_list;
  for (const std::string& r : regexps)
    absl::StrAppend(&regexp_list, regexp_list.empty() ? "" : ",", r);

  // Expressions: one InRegexp, one In of the maximum values, the rest In.
  const size_t in_expressions = kMaxCompatExpressions - 2;
  std::string long_list;
  for (size_t i = 0; i < kMaxCompatValues; ++i) absl::StrAppend(&long_list, i ? "," : "", "v");

  auto build = [&](size_t extra_values, size_t description_bytes) {
    std::string s = absl::StrCat(
        "version: v1alpha1\ncompatibilities:\n- weight: ", kMaxPreferenceWeight,
        "\n  description: ", std::string(description_bytes, 'd'),
        "\n  rules:\n  - name: everything\n    matchFeatures:\n    - feature: cpu.model\n"
        "      matchExpressions:\n        regexps: {op: InRegexp, value: [",
        regexp_list, "]}\n        values: {op: In, value: [", long_list, "]}\n");
    for (size_t i = 0; i < in_expressions; ++i) {
      const size_t values = 1 + extra_values / in_expressions + (i < extra_values % in_expressions);
      absl::StrAppend(&s, "        e", i, ": {op: In, value: [v");
      for (size_t v = 1; v < values; ++v) s += ",v";
      s += "]}\n";
    }
    for (size_t r = 1; r < kMaxCompatRulesPerSet; ++r) {
      absl::StrAppend(&s, "  - {name: r", r, ", matchFeatures: []}\n");
    }
    for (size_t set = 1; set < kMaxCompatSets; ++set) {
      s += "- rules: [{name: r, matchFeatures: []}]\n";
    }
    return s;
  };
  auto nodes = [](const std::string& text) {
    YamlReadResult r = ReadYamlTree(text, SIZE_MAX);
    return r.tree ? r.tree->node_count() : 0;
  };
  const std::string base = build(0, 1);
  const size_t extra = kMaxCompatYamlNodes - nodes(base);
  const std::string filled = build(extra, 1);
  return build(extra, 1 + kMaxCompatSpecBytes - filled.size());
}

// What a spec uses of the budget, to check LargestSpec is at every edge.
std::string BudgetUse(const std::string& text) {
  SpecCheck check = CheckCompatSpec(text);
  if (!check.ok()) {
    return check.problems.empty() ? "invalid" : check.problems[0].message;
  }
  size_t regexps = 0;
  int64_t program = 0;
  size_t most_values = 0;
  for (const CompatSet& set : check.spec->sets) {
    for (const CompatRule& rule : set.rules) {
      for (const FeatureTerm& t : rule.match_features) {
        for (const auto& [element, e] : t.match_expressions) {
          most_values = std::max(most_values, e.values.size());
          for (const auto& re : e.regexps) {
            ++regexps;
            program += re->ProgramSize();
          }
        }
      }
    }
  }
  YamlReadResult yaml = ReadYamlTree(text, SIZE_MAX);
  return absl::StrCat(text.size(), " bytes, ", yaml.tree->node_count(), " nodes, ",
                      CountExpressions(*check.spec), " expressions, ", check.spec->sets.size(),
                      " sets, ", check.spec->sets[0].rules.size(), " rules in set #1, ",
                      most_values, " values in one expression, ", regexps, " regexps of ", program,
                      " instructions");
}

void BM_CheckLargestSpec(benchmark::State& state) {
  const std::string spec = LargestSpec();
  const std::string use = BudgetUse(spec);
  const std::string want = absl::StrCat(
      kMaxCompatSpecBytes, " bytes, ", kMaxCompatYamlNodes, " nodes, ", kMaxCompatExpressions,
      " expressions, ", kMaxCompatSets, " sets, ", kMaxCompatRulesPerSet, " rules in set #1, ",
      kMaxCompatValues, " values in one expression, ", kMaxCompatRegexps, " regexps of ",
      kMaxCompatRegexpProgramSize, " instructions");
  if (use != want) {
    state.SkipWithError(absl::StrCat("not the largest spec: ", use).c_str());
    return;
  }
  for (auto _ : state) {
    SpecCheck check = CheckCompatSpec(spec);
    if (!check.ok()) state.SkipWithError("the largest spec does not pass");
    benchmark::DoNotOptimize(check);
  }
  state.SetLabel(use);
}
BENCHMARK(BM_CheckLargestSpec)->Unit(benchmark::kMillisecond);

void BM_RefuseAliasBomb(benchmark::State& state) {
  std::string bomb =
      "version: v1alpha1\nt: &t {feature: cpu.cpuid, matchExpressions: {AVX: {op: Exists}}}\n";
  std::string previous = "t";
  for (int level = 0; level < 6; ++level) {
    absl::StrAppend(&bomb, "l", level, ": &l", level, " [");
    for (int i = 0; i < 10; ++i) absl::StrAppend(&bomb, i ? ", *" : "*", previous);
    bomb += "]\n";
    previous = absl::StrCat("l", level);
  }
  absl::StrAppend(&bomb, "compatibilities: [{rules: [{name: r, matchAny: [{matchFeatures: *",
                  previous, "}]}]}]\n");
  for (auto _ : state) {
    SpecCheck check = CheckCompatSpec(bomb);
    if (check.ok()) state.SkipWithError("the alias bomb passed");
    benchmark::DoNotOptimize(check);
  }
}
BENCHMARK(BM_RefuseAliasBomb);

void BM_RefuseRegexpBomb(benchmark::State& state) {
  std::string values;
  for (int i = 0; i < 100; ++i) absl::StrAppend(&values, i ? ", " : "", "'\\pL{200}'");
  const std::string bomb = absl::StrCat(
      "version: v1alpha1\ncompatibilities:\n- rules:\n  - name: r\n    matchFeatures:\n"
      "    - feature: cpu.model\n      matchExpressions:\n        vendor_id: {op: InRegexp, "
      "value: [",
      values, "]}\n");
  for (auto _ : state) {
    SpecCheck check = CheckCompatSpec(bomb);
    if (check.ok()) state.SkipWithError("the regexp bomb passed");
    benchmark::DoNotOptimize(check);
  }
}
BENCHMARK(BM_RefuseRegexpBomb)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace imgsel

int main(int argc, char** argv) {
  constexpr char kWrite[] = "--write_largest_spec=";
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], kWrite, sizeof(kWrite) - 1) != 0) continue;
    const std::string path = argv[i] + sizeof(kWrite) - 1;
    const std::string spec = imgsel::LargestSpec();
    std::ofstream out(path, std::ios::binary);
    out << spec;
    if (!out.good()) {
      std::cerr << "cannot write " << path << "\n";
      return 2;
    }
    std::cout << path << ": " << imgsel::BudgetUse(spec) << "\n";
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
