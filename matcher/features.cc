#include "matcher/features.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/types/span.h"

namespace imgsel {
namespace {

struct FeatureAliases {
  absl::string_view canonical;
  std::vector<absl::string_view> aliases;  // lowercase
};

// The one alias table. Add a row (or an alias) here and every part of imgsel
// - the matcher, the probe, the docs - sees it.
const std::vector<FeatureAliases>& Table() {
  static const auto* table = new std::vector<FeatureAliases>{
      // x86 baseline (x86-64-v1)
      {"cmov", {}},
      {"cx8", {"cmpxchg8", "cmpxchg8b"}},
      {"fpu", {"x87"}},
      {"fxsr", {"fxsave"}},
      {"mmx", {}},
      {"sse", {}},
      {"sse2", {}},
      // x86-64-v2
      {"cx16", {"cmpxchg16b"}},
      {"lahf_lm", {"lahf", "sahf", "lahf-sahf", "lahf_sahf", "lahfsahf"}},
      {"popcnt", {}},
      {"sse3", {"pni"}},
      {"ssse3", {}},
      {"sse4_1", {"sse4.1", "sse41", "sse4"}},
      {"sse4_2", {"sse4.2", "sse42"}},
      // x86-64-v3
      {"avx", {}},
      {"avx2", {}},
      {"bmi1", {"bmi"}},
      {"bmi2", {}},
      {"f16c", {}},
      {"fma", {"fma3"}},
      {"lzcnt", {"abm"}},
      {"movbe", {}},
      {"xsave", {"osxsave"}},
      // x86-64-v4
      {"avx512f", {}},
      {"avx512bw", {}},
      {"avx512cd", {}},
      {"avx512dq", {}},
      {"avx512vl", {}},
      // other x86
      {"avx512ifma", {}},
      {"avx512vbmi", {}},
      {"avx512vbmi2", {"avx512_vbmi2"}},
      {"avx512vnni", {"avx512_vnni"}},
      {"avx512bitalg", {"avx512_bitalg"}},
      {"avx512vpopcntdq", {"avx512_vpopcntdq"}},
      {"avx512bf16", {"avx512_bf16"}},
      {"avx512fp16", {"avx512_fp16"}},
      {"avx_vnni", {"avxvnni", "avx-vnni"}},
      {"aes", {"aesni", "aes-ni", "aesarm"}},
      {"pclmulqdq", {"pclmul", "clmul"}},
      {"sha_ni", {"sha", "shani", "sha-ni"}},
      {"adx", {}},
      {"rdrand", {"rdrnd"}},
      {"rdseed", {}},
      {"vaes", {}},
      {"vpclmulqdq", {}},
      {"gfni", {}},
      {"sse4a", {}},
      {"fma4", {}},
      {"xop", {}},
      {"rtm", {}},
      {"hle", {}},
      {"erms", {}},
      {"fsrm", {}},
      {"clflushopt", {}},
      {"clwb", {}},
      {"movdiri", {}},
      {"movdir64b", {}},
      {"serialize", {}},
      {"amx_tile", {"amxtile", "amx-tile"}},
      {"amx_bf16", {"amxbf16", "amx-bf16"}},
      {"amx_int8", {"amxint8", "amx-int8"}},
      // arm64 (HWCAP / cpuinfo names)
      {"fp", {}},
      {"asimd", {"neon", "simd"}},
      {"evtstrm", {}},
      {"pmull", {}},
      {"sha1", {}},
      {"sha2", {}},
      {"crc32", {"crc"}},
      {"atomics", {"lse"}},
      {"fphp", {"fp16"}},
      {"asimdhp", {}},
      {"cpuid", {"armcpuid"}},
      {"asimdrdm", {"rdm", "rdma"}},
      {"jscvt", {}},
      {"fcma", {}},
      {"lrcpc", {"rcpc"}},
      {"dcpop", {}},
      {"sha3", {}},
      {"sm3", {}},
      {"sm4", {}},
      {"asimddp", {"dotprod"}},
      {"sha512", {}},
      {"sve", {}},
      {"asimdfhm", {"fhm"}},
      {"dit", {}},
      {"uscat", {}},
      {"ilrcpc", {"rcpc2"}},
      {"flagm", {}},
      {"ssbs", {}},
      {"sb", {}},
      {"paca", {}},
      {"pacg", {}},
      {"dcpodp", {}},
      {"sve2", {}},
      {"sveaes", {}},
      {"svepmull", {}},
      {"svebitperm", {}},
      {"svesha3", {}},
      {"svesm4", {}},
      {"flagm2", {}},
      {"frint", {}},
      {"svei8mm", {}},
      {"svef32mm", {}},
      {"svef64mm", {}},
      {"svebf16", {}},
      {"i8mm", {}},
      {"bf16", {}},
      {"dgh", {}},
      {"rng", {}},
      {"bti", {}},
      {"mte", {}},
  };
  return *table;
}

constexpr absl::string_view kV1[] = {"cmov", "cx8", "fpu", "fxsr", "mmx", "sse", "sse2"};
constexpr absl::string_view kV2[] = {"cx16",   "lahf_lm", "popcnt", "sse3",
                                     "sse4_1", "sse4_2",  "ssse3"};
constexpr absl::string_view kV3[] = {"avx", "avx2",  "bmi1",  "bmi2", "f16c",
                                     "fma", "lzcnt", "movbe", "xsave"};
constexpr absl::string_view kV4[] = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"};

const absl::flat_hash_map<std::string, absl::string_view>& AliasMap() {
  static const auto* map = [] {
    auto* m = new absl::flat_hash_map<std::string, absl::string_view>();
    for (const auto& row : Table()) {
      m->emplace(std::string(row.canonical), row.canonical);
      for (auto a : row.aliases) m->emplace(std::string(a), row.canonical);
    }
    return m;
  }();
  return *map;
}

// "x86-64-v3", "x86_64_v3", "x86-64-v3" (GCC -march) -> 3; 0 otherwise.
int LevelOf(absl::string_view lower) {
  for (absl::string_view prefix :
       {"x86-64-v", "x86_64-v", "x86_64_v", "x86-64v", "amd64-v", "amd64/v"}) {
    if (absl::StartsWith(lower, prefix) && lower.size() == prefix.size() + 1) {
      char c = lower.back();
      if (c >= '1' && c <= '4') return c - '0';
    }
  }
  return 0;
}

}  // namespace

std::string NfdCpuidName(absl::string_view canonical) {
  // Where NFD (klauspost/cpuid) spells a feature other than upper case; every
  // right-hand name is also an alias in Table(), so it reads back.
  static const auto* nfd = new absl::flat_hash_map<absl::string_view, absl::string_view>{
      {"aes", "AESNI"},        {"amx_bf16", "AMXBF16"}, {"amx_int8", "AMXINT8"},
      {"amx_tile", "AMXTILE"}, {"avx_vnni", "AVXVNNI"}, {"cpuid", "ARMCPUID"},
      {"cx8", "CMPXCHG8"},     {"fma", "FMA3"},         {"fpu", "X87"},
      {"lahf_lm", "LAHF"},     {"pclmulqdq", "CLMUL"},  {"sha_ni", "SHA"},
      {"sse4_1", "SSE4"},      {"sse4_2", "SSE42"},     {"xsave", "OSXSAVE"},
  };
  if (auto it = nfd->find(canonical); it != nfd->end()) return std::string(it->second);
  return absl::AsciiStrToUpper(canonical);
}

std::vector<std::string> X86LevelFeatures(int level) {
  std::vector<std::string> out;
  if (level < 1 || level > 4) return out;
  auto add = [&](std::span<const absl::string_view> names) {
    for (auto n : names) out.emplace_back(n);
  };
  add(kV1);
  if (level >= 2) add(kV2);
  if (level >= 3) add(kV3);
  if (level >= 4) add(kV4);
  return out;
}

absl::Span<const absl::string_view> CanonicalFeatureViews(absl::string_view name) {
  // Levels as contiguous static lists, built once.
  static const auto* levels = [] {
    auto* v = new std::vector<std::vector<absl::string_view>>(5);
    for (int level = 1; level <= 4; ++level) {
      for (absl::string_view n : kV1) (*v)[level].push_back(n);
      if (level >= 2) (*v)[level].insert((*v)[level].end(), std::begin(kV2), std::end(kV2));
      if (level >= 3) (*v)[level].insert((*v)[level].end(), std::begin(kV3), std::end(kV3));
      if (level >= 4) (*v)[level].insert((*v)[level].end(), std::begin(kV4), std::end(kV4));
    }
    return v;
  }();
  // Fast path: already a canonical name or a lowercase alias.
  const auto& map = AliasMap();
  if (auto it = map.find(name); it != map.end()) return absl::MakeConstSpan(&it->second, 1);
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (int level = LevelOf(lower)) return absl::MakeConstSpan((*levels)[level]);
  auto lookup = [&](absl::string_view key) -> absl::Span<const absl::string_view> {
    if (auto it = map.find(key); it != map.end()) return absl::MakeConstSpan(&it->second, 1);
    return {};
  };
  if (auto c = lookup(lower); !c.empty()) return c;
  // GCC flag spelling: -mavx2
  if (absl::StartsWith(lower, "-m")) {
    if (auto c = lookup(absl::string_view(lower).substr(2)); !c.empty()) return c;
  }
  // Go x/sys/cpu spelling: HasAVX2, X86.HasAVX2, ARM64.HasASIMD
  absl::string_view tail = lower;
  if (size_t dot = tail.rfind('.');
      dot != absl::string_view::npos && absl::StartsWith(tail.substr(dot + 1), "has")) {
    tail = tail.substr(dot + 1);
  }
  if (absl::StartsWith(tail, "has")) return lookup(tail.substr(3));
  return {};
}

std::vector<std::string> CanonicalFeatures(absl::string_view name) {
  std::vector<std::string> out;
  for (absl::string_view n : CanonicalFeatureViews(name)) out.emplace_back(n);
  return out;
}

std::optional<std::string> CanonicalFeature(absl::string_view name) {
  std::vector<std::string> all = CanonicalFeatures(name);
  if (all.size() != 1) return std::nullopt;
  return std::move(all[0]);
}

std::span<const absl::string_view> KnownCanonicalFeatures() {
  static const auto* names = [] {
    auto* v = new std::vector<absl::string_view>();
    for (const auto& row : Table()) v->push_back(row.canonical);
    return v;
  }();
  return *names;
}

}  // namespace imgsel
