// Selection with compatibility artifacts against a real registry.
//
//   build/default/bench/selector_bench
//
// Starts Debian's docker-registry on 127.0.0.1 (temp root, stopped at exit),
// pushes the bundled example index (examples/layout), attaches an NFD spec to
// three entries and to the index (so four artifacts, reached through the
// sha256-<hex> tag fallback: distribution 2.8 has no referrers API), then:
//
//   BM_Cold        a fresh cache directory and a new pipeline per iteration:
//                  every referrers list and artifact comes from the registry
//   BM_Warm        the same selection again on a warm cache
//   BM_NoArtifacts the same selection with [compat] enabled = false
//
// All three select by digest, so a warm cache needs no request at all. The
// counters report registry requests per selection.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "matcher/features.h"
#include "matcher/index.h"
#include "registry/attach.h"
#include "registry/client.h"
#include "selector/pipeline.h"
#include "tests/registry/real_registry.h"

#ifndef IMGSEL_SOURCE_DIR
#error "IMGSEL_SOURCE_DIR must name the source tree"
#endif

namespace imgsel {
namespace {

constexpr char kSpec[] = R"(version: v1alpha1
compatibilities:
- weight: 10
  tag: modern-kernel
  rules:
  - name: kernel and cpu
    matchFeatures:
    - feature: kernel.version
      matchExpressions:
        major: {op: Ge, value: ["5"]}
    - feature: cpu.cpuid
      matchExpressions:
        AVX2: {op: Exists}
        FMA3: {op: Exists}
- weight: 1
  rules:
  - name: anything
    matchFeatures:
    - feature: kernel.version
      matchExpressions:
        major: {op: Exists}
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

HostProfile Host() {
  HostProfile h;
  h.platform = {.os = "linux", .architecture = "amd64", .variant = "v3"};
  for (auto& f : X86LevelFeatures(3)) h.features.insert(f);
  h.nfd.attributes["kernel.version"] = {{"major", "6"}, {"minor", "1"}};
  h.nfd.flags["cpu.cpuid"] = {"AVX2", "FMA3"};
  return h;
}

struct Fixture {
  std::unique_ptr<registry::testing::RealRegistry> registry;
  std::string pinned;  // host/repo@<index digest>
  std::string error;
};

Fixture& Setup() {
  static Fixture* f = [] {
    auto* fx = new Fixture();
    fx->registry = registry::testing::RealRegistry::Start(&fx->error);
    if (!fx->registry) return fx;
    registry::ClientOptions options;
    auto client = registry::RegistryClient::Create(options);
    if (!client.ok()) {
      fx->error = std::string(client.status().message());
      return fx;
    }
    auto repo = registry::ParseReference(absl::StrCat(fx->registry->host(), "/bench/demo:v1"));
    const std::string layout = absl::StrCat(IMGSEL_SOURCE_DIR, "/examples/layout");
    auto layout_index = ParseIndex(ReadFile(layout + "/index.json"));
    std::string index_digest(layout_index->manifests[0].digest);
    auto blob = [&](absl::string_view digest) {
      return ReadFile(absl::StrCat(layout, "/blobs/sha256/", digest.substr(7)));
    };
    std::string index_bytes = blob(index_digest);
    auto index = ParseIndex(index_bytes);
    std::set<std::string> manifests;
    for (const auto& d : index->manifests) manifests.insert(std::string(d.digest));
    for (const auto& entry : std::filesystem::directory_iterator(layout + "/blobs/sha256")) {
      std::string digest = "sha256:" + entry.path().filename().string();
      if (digest == index_digest || manifests.count(digest)) continue;
      (void)(*client)->PushBlob(*repo, ReadFile(entry.path()));
    }
    for (const auto& d : index->manifests) {
      (void)(*client)->PushManifest(*repo, d.media_type, blob(d.digest), d.digest);
    }
    (void)(*client)->PushManifest(*repo, "application/vnd.oci.image.index.v1+json", index_bytes,
                                  "v1");
    std::vector<std::string> subjects = {index_digest};
    for (int i : {0, 1, 2}) subjects.push_back(std::string(index->manifests[i].digest));
    for (const auto& subject : subjects) {
      auto ref =
          registry::ParseReference(absl::StrCat(fx->registry->host(), "/bench/demo@", subject));
      auto attached = registry::Attach(**client, *ref, kSpec, registry::AttachOptions{});
      if (!attached.ok()) fx->error = std::string(attached.status().message());
    }
    fx->pinned = absl::StrCat(fx->registry->host(), "/bench/demo@", index_digest);
    return fx;
  }();
  return *f;
}

std::unique_ptr<SelectionPipeline> MakePipeline(const std::string& cache_dir, bool artifacts) {
  Config config = DefaultConfig();
  config.compat.cache_dir = cache_dir;
  config.compat.enabled = artifacts;
  auto p = SelectionPipeline::Create(config, Host());
  return p.ok() ? *std::move(p) : nullptr;
}

void Run(benchmark::State& state, SelectionPipeline& p, bool fresh, bool artifacts) {
  SelectionRequest r;
  r.reference = Setup().pinned;
  int64_t trips = 0, selections = 0;
  for (auto _ : state) {
    std::unique_ptr<SelectionPipeline> own;
    SelectionPipeline* use = &p;
    if (fresh) {
      state.PauseTiming();
      std::string dir = absl::StrCat("/tmp/imgsel-bench-cold-", getpid());
      std::filesystem::remove_all(dir);
      own = MakePipeline(dir, artifacts);
      use = own.get();
      state.ResumeTiming();
    }
    auto s = use->Select(r);
    if (!s.ok()) {
      state.SkipWithError(std::string(s.status().message()).c_str());
      return;
    }
    trips += s->round_trips;
    ++selections;
  }
  state.counters["requests/selection"] =
      benchmark::Counter(selections ? static_cast<double>(trips) / selections : 0);
}

void BM_Cold(benchmark::State& state) {
  if (!Setup().registry) return state.SkipWithError(Setup().error.c_str());
  auto p = MakePipeline("/tmp/unused", true);
  Run(state, *p, /*fresh=*/true, true);
}

void BM_Warm(benchmark::State& state) {
  if (!Setup().registry) return state.SkipWithError(Setup().error.c_str());
  std::string dir = absl::StrCat("/tmp/imgsel-bench-warm-", getpid());
  std::filesystem::remove_all(dir);
  auto p = MakePipeline(dir, true);
  SelectionRequest r;
  r.reference = Setup().pinned;
  (void)p->Select(r);  // warm it
  Run(state, *p, false, true);
  std::filesystem::remove_all(dir);
}

void BM_NoArtifacts(benchmark::State& state) {
  if (!Setup().registry) return state.SkipWithError(Setup().error.c_str());
  std::string dir = absl::StrCat("/tmp/imgsel-bench-none-", getpid());
  std::filesystem::remove_all(dir);
  auto p = MakePipeline(dir, false);
  SelectionRequest r;
  r.reference = Setup().pinned;
  (void)p->Select(r);  // the index itself into the cache
  Run(state, *p, false, false);
  std::filesystem::remove_all(dir);
}

BENCHMARK(BM_Cold)->Unit(benchmark::kMillisecond)->Iterations(20);
BENCHMARK(BM_Warm)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_NoArtifacts)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace imgsel

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  delete &imgsel::Setup();  // stops the registry
  return 0;
}
