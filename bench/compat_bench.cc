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
#include <fstream>
#include <sstream>
#include <string>

#include "benchmark/benchmark.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_spec.h"
#include "matcher/host_profile.h"

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

}  // namespace
}  // namespace imgsel

BENCHMARK_MAIN();
