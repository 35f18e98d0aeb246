// What imgseld spends on one Select with index bytes, in process: the
// selection pipeline alone, then with the answer written to wire bytes in
// the full view and in SELECT_VIEW_BASIC, the same with the caches cooled
// first, and what a C++ client spends parsing each answer
// (docs/BENCHMARKS.md "imgseld").
//
//   build/default/bench/answer_bench
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "config/config.h"
#include "imgsel/v1/selector.pb.h"
#include "matcher/host_profile.h"
#include "plugin/select_answer.h"
#include "selector/pipeline.h"

namespace imgsel {
namespace {

constexpr char kIndexBlob[] =
    "/layout/blobs/sha256/25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The example index for the saved x86-64-v3 host, as plugin_bench asks it.
struct Fixture {
  std::unique_ptr<SelectionPipeline> pipeline;
  std::string index = ReadFile(std::string(IMGSEL_EXAMPLES) + kIndexBlob);

  Fixture() {
    auto host = ParseHostProfile(ReadFile(std::string(IMGSEL_EXAMPLES) + "/hosts/amd64-v3.json"),
                                 "amd64-v3.json");
    auto created = host.ok() ? SelectionPipeline::Create(Config{}, *host)
                             : absl::StatusOr<std::unique_ptr<SelectionPipeline>>(host.status());
    if (!created.ok() || index.empty()) {
      fprintf(stderr, "answer_bench: %s\n", std::string(created.status().message()).c_str());
      exit(1);
    }
    pipeline = *std::move(created);
  }
};

void BM_Selection(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    SelectionRequest req;
    req.index_bytes = f.index;
    auto sel = f.pipeline->Select(req);
    benchmark::DoNotOptimize(sel);
  }
}

// Plus the answer written to wire bytes, as imgseld sends it. Arg 0: the
// full answer; 1: SELECT_VIEW_BASIC.
void BM_SelectionAndAnswer(benchmark::State& state) {
  Fixture f;
  const bool basic = state.range(0) == 1;
  size_t bytes = 0;
  for (auto _ : state) {
    SelectionRequest req;
    req.index_bytes = f.index;
    auto sel = f.pipeline->Select(req);
    std::string wire;
    plugin::EncodeSelectAnswer(*sel, /*with_json=*/false, basic, &wire);
    bytes = wire.size();
    benchmark::DoNotOptimize(wire);
  }
  state.counters["answer_bytes"] = static_cast<double>(bytes);
}

// What a C++ client spends reading the answer: the wire bytes parsed into
// the generated message. Arg as above.
void BM_ParseAnswer(benchmark::State& state) {
  Fixture f;
  SelectionRequest req;
  req.index_bytes = f.index;
  auto sel = f.pipeline->Select(req);
  std::string wire;
  plugin::EncodeSelectAnswer(*sel, /*with_json=*/false, state.range(0) == 1, &wire);
  for (auto _ : state) {
    v1::SelectResponse resp;
    if (!resp.ParseFromString(wire)) state.SkipWithError("answer does not parse");
    benchmark::DoNotOptimize(resp);
  }
  state.counters["answer_bytes"] = static_cast<double>(wire.size());
}

// BM_SelectionAndAnswer with the caches cooled before every call, as in
// imgseld, where gRPC and the kernel run between two selections: the second
// arg is how many KiB are written to evict them (1024: this machine's L2).
// The pause itself costs about a microsecond: compare with the row of 0 KiB.
void BM_SelectionAndAnswerCold(benchmark::State& state) {
  Fixture f;
  const bool basic = state.range(0) == 1;
  std::vector<char> other_work(static_cast<size_t>(state.range(1)) << 10);
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < other_work.size(); i += 64) other_work[i]++;
    state.ResumeTiming();
    SelectionRequest req;
    req.index_bytes = f.index;
    auto sel = f.pipeline->Select(req);
    std::string wire;
    plugin::EncodeSelectAnswer(*sel, /*with_json=*/false, basic, &wire);
    benchmark::DoNotOptimize(wire);
  }
}

BENCHMARK(BM_Selection);
BENCHMARK(BM_SelectionAndAnswer)->Arg(0)->Arg(1);
BENCHMARK(BM_SelectionAndAnswerCold)->Args({0, 0})->Args({0, 1024})->Args({1, 0})->Args({1, 1024});
BENCHMARK(BM_ParseAnswer)->Arg(0)->Arg(1);

}  // namespace
}  // namespace imgsel

BENCHMARK_MAIN();
