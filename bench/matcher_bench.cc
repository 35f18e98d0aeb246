// Selection cost against the cost of merely parsing the same index.
//
//   build/default/bench/matcher_bench
//
// BM_ParseOnly: simdjson DOM-parses the index bytes and does nothing else.
// BM_Stage1/BM_ParseIndex: the parts of imgsel's parse (see below).
// BM_Select: imgsel's ParseIndex + Select (with a config of prefer rules and
// a host with features), the whole matcher path. The ratio of the two at
// 1,024 entries is the figure of merit (target <= 1.5x), and a 16-entry
// select must stay under 20 us.
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "matcher/features.h"
#include "matcher/index.h"
#include "matcher/json_cursor.h"
#include "matcher/select.h"
#include "simdjson.h"

namespace imgsel {
namespace {

// A realistic index: platforms cycle through what multi-arch images carry,
// a quarter of the amd64 entries require features, some carry annotations.
std::string MakeIndex(int n) {
  static const char* kPlatforms[] = {
      R"("os":"linux","architecture":"amd64")",
      R"("os":"linux","architecture":"amd64","variant":"v3")",
      R"("os":"linux","architecture":"arm64")",
      R"("os":"linux","architecture":"arm","variant":"v7")",
      R"("os":"linux","architecture":"amd64","features":["avx2","bmi2","fma"])",
      R"("os":"linux","architecture":"ppc64le")",
      R"("os":"linux","architecture":"s390x")",
      R"("os":"unknown","architecture":"unknown")",
  };
  std::string json =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
  for (int i = 0; i < n; ++i) {
    std::string hex = absl::StrCat(i);
    absl::StrAppend(
        &json, i ? "," : "",
        R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)",
        std::string(64 - hex.size(), 'a'), hex, R"(","size":)", 1000 + i, R"(,"platform":{)",
        kPlatforms[i % 8], "}");
    if (i % 3 == 0) {
      absl::StrAppend(&json, R"(,"annotations":{"com.example.gpu":")", i % 2 ? "nvidia" : "none",
                      R"(","org.opencontainers.image.created":"2026-01-01T00:00:00Z"})");
    }
    absl::StrAppend(&json, "}");
  }
  absl::StrAppend(&json, "]}");
  return json;
}

HostProfile V3Host() {
  HostProfile h;
  h.platform.os = "linux";
  h.platform.architecture = "amd64";
  h.platform.variant = "v3";
  for (auto& f : X86LevelFeatures(3)) h.features.insert(f);
  return h;
}

Policy Rules() {
  Policy p;
  PreferRule gpu;
  gpu.annotation = "com.example.gpu";
  gpu.value = "nvidia";
  gpu.weight = 10;
  PreferRule zstd;
  zstd.annotation = "io.github.containers.compression.zstd";
  zstd.weight = 1;
  p.prefer = {gpu, zstd};
  return p;
}

void BM_ParseOnly(benchmark::State& state) {
  std::string json = MakeIndex(static_cast<int>(state.range(0)));
  simdjson::dom::parser parser;
  for (auto _ : state) {
    simdjson::dom::element doc;
    auto err = parser.parse(json.data(), json.size()).get(doc);
    benchmark::DoNotOptimize(err);
    benchmark::DoNotOptimize(doc);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}

void BM_Select(benchmark::State& state) {
  std::string json = MakeIndex(static_cast<int>(state.range(0)));
  HostProfile host = V3Host();
  Policy policy = Rules();
  for (auto _ : state) {
    auto index = ParseIndex(json);
    Decision d = Select(*std::move(index), host, policy);
    benchmark::DoNotOptimize(d.selected());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}

// Select alone on an index parsed once: the ranking side of BM_Select.
void BM_SelectParsed(benchmark::State& state) {
  std::string json = MakeIndex(static_cast<int>(state.range(0)));
  HostProfile host = V3Host();
  Policy policy = Rules();
  auto index = ParseIndex(json);
  for (auto _ : state) {
    Decision d = Select(*index, host, policy);
    benchmark::DoNotOptimize(d.selected());
  }
}

// The parse into candidates alone, to split the cost of BM_Select.
void BM_ParseIndex(benchmark::State& state) {
  std::string json = MakeIndex(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto index = ParseIndex(json);
    benchmark::DoNotOptimize(index->manifests.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}

// The parts of ParseIndex: copying the bytes and simdjson's stage 1 (the
// token index), then that plus validating every token with JsonCursor and
// keeping nothing. The rest of BM_ParseIndex is reading the descriptors.
void BM_Stage1(benchmark::State& state, bool validate) {
  std::string json = MakeIndex(static_cast<int>(state.range(0)));
  std::string buffer(2 * (json.size() + kJsonPadding), '\0');
  for (auto _ : state) {
    std::memcpy(buffer.data(), json.data(), json.size());
    JsonCursor cursor(buffer.data(), json.size(), buffer.data() + json.size() + kJsonPadding, 64);
    bool ok = cursor.ok();
    JsonCursor::Pos at = cursor.begin();
    if (validate) ok = cursor.Skip(at) && cursor.AtEnd(at);
    benchmark::DoNotOptimize(ok);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json.size()));
}

BENCHMARK_CAPTURE(BM_Stage1, tokens, false)->Arg(1024);
BENCHMARK_CAPTURE(BM_Stage1, validated, true)->Arg(1024);
BENCHMARK(BM_ParseIndex)->Arg(16)->Arg(1024);
BENCHMARK(BM_SelectParsed)->Arg(1024);
BENCHMARK(BM_ParseOnly)->Arg(4)->Arg(16)->Arg(64)->Arg(1024);
BENCHMARK(BM_Select)->Arg(4)->Arg(16)->Arg(64)->Arg(1024);

}  // namespace
}  // namespace imgsel

BENCHMARK_MAIN();
