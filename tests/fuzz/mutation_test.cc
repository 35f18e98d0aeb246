// Every parser of outside input against corrupted versions of real
// documents: bytes flipped, deleted, duplicated and truncated, structure
// characters injected. A parser must answer every variant with a value or an
// error that has a message - never crash, hang or read out of bounds (the
// asan preset runs this too). Deterministic: a fixed seed per document.
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "config/config.h"
#include "gtest/gtest.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_spec.h"
#include "matcher/host_profile.h"
#include "matcher/index.h"
#include "matcher/select.h"
#include "tests/fuzz/json_mutator.h"

namespace imgsel {
namespace {

constexpr int kVariantsPerSeed = 20000;

std::string Read(const std::string& relative) {
  std::ifstream in(absl::StrCat(IMGSEL_SOURCE_DIR, "/", relative), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << relative;
  return ss.str();
}

std::string LayoutIndex() {
  auto layout = ParseIndex(Read("examples/layout/index.json"));
  std::string digest(layout->manifests[0].digest);
  return Read(absl::StrCat("examples/layout/blobs/sha256/", digest.substr(7)));
}

void RunMutants(const std::string& seed, uint32_t seed_number,
                const std::function<void(const std::string&)>& parse) {
  std::mt19937 rng(seed_number);
  parse(seed);
  for (int i = 0; i < kVariantsPerSeed; ++i) parse(testing::Mutate(seed, rng));
}

HostProfile Host() {
  HostProfile h;
  h.platform = {.os = "linux", .architecture = "amd64", .variant = "v3"};
  h.features = {"avx2", "bmi2"};
  h.nfd.attributes["kernel.version"] = {{"major", "6"}, {"full", "6.1.0"}};
  h.nfd.flags["cpu.cpuid"] = {"AVX2"};
  h.nfd.instances["pci.device"] = {{{"vendor", "10de"}, {"class", "0300"}}};
  return h;
}

TEST(Mutation, IndexParseAndSelect) {
  const HostProfile host = Host();
  Policy policy;
  PreferRule rule;
  rule.annotation = "com.example.gpu";
  rule.weight = 5;
  policy.prefer.push_back(rule);
  int parsed = 0;
  RunMutants(LayoutIndex(), 1, [&](const std::string& bytes) {
    auto index = ParseIndex(bytes, "mutant");
    if (!index.ok()) {
      EXPECT_FALSE(index.status().message().empty());
      return;
    }
    ++parsed;
    Decision d = Select(*std::move(index), host, policy);
    for (const Candidate& c : d.candidates) EXPECT_FALSE(ExplainCandidate(d, c).empty());
  });
  EXPECT_GT(parsed, 0) << "some mutants must still parse, or the test exercises nothing";
}

TEST(Mutation, HostProfile) {
  RunMutants(HostProfileToJson(Host()), 2, [](const std::string& bytes) {
    auto p = ParseHostProfile(bytes, "mutant");
    if (!p.ok()) {
      EXPECT_FALSE(p.status().message().empty());
    }
  });
}

TEST(Mutation, CompatSpecs) {
  const HostProfile host = Host();
  uint32_t n = 3;
  for (const char* file : {"tests/data/compat/realistic.yaml", "tests/data/compat/groups.json"}) {
    RunMutants(Read(file), n++, [&](const std::string& bytes) {
      SpecCheck check = CheckCompatSpec(bytes);
      if (check.spec) (void)EvaluateCompatSpec(*check.spec, host);
      for (const SpecProblem& p : check.problems) EXPECT_FALSE(p.message.empty());
    });
  }
}

TEST(Mutation, Config) {
  RunMutants(Read("examples/imgsel.toml"), 5, [](const std::string& bytes) {
    auto c = ParseConfig(bytes, "mutant.toml");
    if (!c.ok()) {
      EXPECT_FALSE(c.status().message().empty());
    }
  });
}

}  // namespace
}  // namespace imgsel
