#include "matcher/features.h"

#include <algorithm>
#include <cstdlib>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace imgsel {
namespace {

struct FeatureAliases {
  absl::string_view canonical;
  std::vector<absl::string_view> aliases;  // lowercase
  // What having this feature guarantees (directly; the closure is taken).
  std::vector<absl::string_view> implies = {};
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
      {"sse2", {}, {"sse"}},
      // x86-64-v2
      {"cx16", {"cmpxchg16b"}},
      {"lahf_lm", {"lahf", "sahf", "lahf-sahf", "lahf_sahf", "lahfsahf"}},
      {"popcnt", {}},
      {"sse3", {"pni"}, {"sse2"}},
      {"ssse3", {}, {"sse3"}},
      {"sse4_1", {"sse4.1", "sse41", "sse4"}, {"ssse3"}},
      {"sse4_2", {"sse4.2", "sse42"}, {"sse4_1"}},
      // x86-64-v3
      {"avx", {}, {"sse4_2", "xsave"}},
      {"avx2", {}, {"avx"}},
      {"bmi1", {"bmi"}},
      {"bmi2", {}},
      {"f16c", {}, {"avx"}},
      {"fma", {"fma3"}, {"avx"}},
      {"lzcnt", {"abm"}},
      {"movbe", {}},
      {"xsave", {"osxsave"}},
      // x86-64-v4
      {"avx512f", {}, {"avx2"}},
      {"avx512bw", {}, {"avx512f"}},
      {"avx512cd", {}, {"avx512f"}},
      {"avx512dq", {}, {"avx512f"}},
      {"avx512vl", {}, {"avx512f"}},
      // other x86
      {"avx512ifma", {}, {"avx512f"}},
      {"avx512vbmi", {}, {"avx512bw"}},
      {"avx512vbmi2", {"avx512_vbmi2"}, {"avx512bw"}},
      {"avx512vnni", {"avx512_vnni"}, {"avx512f"}},
      {"avx512bitalg", {"avx512_bitalg"}, {"avx512bw"}},
      {"avx512vpopcntdq", {"avx512_vpopcntdq"}, {"avx512f"}},
      {"avx512bf16", {"avx512_bf16"}, {"avx512bw"}},
      {"avx512fp16", {"avx512_fp16"}, {"avx512bw"}},
      {"avx_vnni", {"avxvnni", "avx-vnni"}, {"avx2"}},
      {"aes", {"aesni", "aes-ni", "aesarm"}},  // x86 AES-NI and arm64 AES share the name
      {"pclmulqdq", {"pclmul", "clmul"}, {"sse2"}},
      {"sha_ni", {"sha", "shani", "sha-ni"}, {"sse2"}},
      {"adx", {}},
      {"rdrand", {"rdrnd"}},
      {"rdseed", {}},
      {"vaes", {}, {"avx"}},
      {"vpclmulqdq", {}, {"pclmulqdq", "avx"}},
      {"gfni", {}},
      {"sse4a", {}, {"sse3"}},
      {"fma4", {}, {"sse4a", "avx"}},
      {"xop", {}, {"fma4"}},
      {"rtm", {}},
      {"hle", {}},
      {"erms", {}},
      {"fsrm", {}},
      {"clflushopt", {}},
      {"clwb", {}},
      {"movdiri", {}},
      {"movdir64b", {}},
      {"serialize", {}},
      {"amx_tile", {"amxtile", "amx-tile"}, {"xsave"}},
      {"amx_bf16", {"amxbf16", "amx-bf16"}, {"amx_tile"}},
      {"amx_int8", {"amxint8", "amx-int8"}, {"amx_tile"}},
      // arm64 (HWCAP / cpuinfo names)
      {"fp", {}},
      {"asimd", {"neon", "simd"}, {"fp"}},
      {"evtstrm", {}},
      {"pmull", {}, {"aes"}},
      {"sha1", {}, {"asimd"}},
      {"sha2", {}, {"sha1"}},
      {"crc32", {"crc"}},
      {"atomics", {"lse"}},
      {"fphp", {"fp16"}, {"fp"}},
      {"asimdhp", {}, {"asimd", "fphp"}},
      {"cpuid", {"armcpuid"}},
      {"asimdrdm", {"rdm", "rdma"}, {"asimd"}},
      {"jscvt", {}, {"fp"}},
      {"fcma", {}, {"asimd"}},
      {"lrcpc", {"rcpc"}},
      {"dcpop", {}},
      {"sha3", {}, {"sha2"}},
      {"sm3", {}, {"asimd"}},
      {"sm4", {}, {"asimd"}},
      {"asimddp", {"dotprod"}, {"asimd"}},
      {"sha512", {}, {"sha2"}},
      {"sve", {}, {"asimdhp"}},
      {"asimdfhm", {"fhm"}, {"asimdhp"}},
      {"dit", {}},
      {"uscat", {}},
      {"ilrcpc", {"rcpc2"}, {"lrcpc"}},
      {"flagm", {}},
      {"ssbs", {}},
      {"sb", {}},
      {"paca", {}},
      {"pacg", {}},
      {"dcpodp", {}, {"dcpop"}},
      {"sve2", {}, {"sve"}},
      {"sveaes", {}, {"sve2", "aes"}},
      {"svepmull", {}, {"sveaes", "pmull"}},
      {"svebitperm", {}, {"sve2"}},
      {"svesha3", {}, {"sve2", "sha3"}},
      {"svesm4", {}, {"sve2", "sm4"}},
      {"flagm2", {}, {"flagm"}},
      {"frint", {}},
      {"svei8mm", {}, {"sve", "i8mm"}},
      {"svef32mm", {}, {"sve"}},
      {"svef64mm", {}, {"sve"}},
      {"svebf16", {}, {"sve", "bf16"}},
      {"i8mm", {}, {"asimd"}},
      {"bf16", {}, {"asimd"}},
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

// What each Arm architecture version makes mandatory, in HWCAP names: the
// features the Arm ARM makes mandatory at that version that Linux reports
// and that every kernel exposes (pointer authentication and BTI need kernel
// support, so a host's version is never judged, or believed, by them). Each
// version adds to the one before; v9.x is v8.(x+5) with SVE2 (containerd's
// table pairs them the same way). The probe names a host's version with it.
constexpr absl::string_view kArm80[] = {"fp", "asimd"};
constexpr absl::string_view kArm81[] = {"atomics", "asimdrdm", "crc32"};
constexpr absl::string_view kArm82[] = {"dcpop"};
constexpr absl::string_view kArm83[] = {"jscvt", "fcma", "lrcpc"};
constexpr absl::string_view kArm84[] = {"dit", "uscat", "ilrcpc", "flagm"};
constexpr absl::string_view kArm85[] = {"sb", "flagm2", "frint"};
constexpr absl::string_view kArm86[] = {"i8mm", "bf16"};
constexpr absl::string_view kArm90[] = {"sve2"};

// What a name stands for: its canonical names as written (one, or a level's
// list) and everything they need, implications included.
struct Resolved {
  std::vector<absl::string_view> canonical;
  FeatureSet need;
};

struct Tables {
  absl::flat_hash_map<absl::string_view, size_t> bit;         // canonical -> bit
  std::vector<absl::string_view> names;                       // bit -> canonical
  std::vector<Resolved> rows;                                 // by bit
  Resolved levels[5];                                         // x86-64-v1..v4
  absl::flat_hash_map<std::string, const Resolved*> by_name;  // every lowercase spelling
};

const Tables& GetTables() {
  static const Tables* tables = [] {
    auto* t = new Tables();
    const auto& table = Table();
    if (table.size() > kFeatureBits) std::abort();  // a table row past the set's width
    for (const auto& row : table) {
      t->bit.emplace(row.canonical, t->names.size());
      t->names.push_back(row.canonical);
    }
    // Direct implications as bits, then the closure (the table is a DAG;
    // iterating to a fixed point also tolerates a cycle).
    std::vector<FeatureSet> direct(table.size());
    for (size_t i = 0; i < table.size(); ++i) {
      direct[i].set(i);
      for (auto implied : table[i].implies) {
        auto it = t->bit.find(implied);
        if (it == t->bit.end()) std::abort();  // an implication names no row
        direct[i].set(it->second);
      }
    }
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t i = 0; i < table.size(); ++i) {
        FeatureSet closed = direct[i];
        for (size_t j = 0; j < table.size(); ++j) {
          if (j != i && direct[i].test(j)) closed |= direct[j];
        }
        if (closed != direct[i]) {
          direct[i] = closed;
          changed = true;
        }
      }
    }
    t->rows.resize(table.size());
    for (size_t i = 0; i < table.size(); ++i) {
      t->rows[i].canonical = {table[i].canonical};
      t->rows[i].need = direct[i];
    }
    for (int level = 1; level <= 4; ++level) {
      Resolved& r = t->levels[level];
      auto add = [&](absl::Span<const absl::string_view> names) {
        for (auto n : names) {
          r.canonical.push_back(n);
          r.need |= direct[t->bit.at(n)];
        }
      };
      add(kV1);
      if (level >= 2) add(kV2);
      if (level >= 3) add(kV3);
      if (level >= 4) add(kV4);
    }
    for (size_t i = 0; i < table.size(); ++i) {
      t->by_name.emplace(std::string(table[i].canonical), &t->rows[i]);
      for (auto a : table[i].aliases) t->by_name.emplace(std::string(a), &t->rows[i]);
    }
    return t;
  }();
  return *tables;
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

bool FeatureNameChar(char c) {
  return absl::ascii_isalnum(c) || c == '_' || c == '-' || c == '.' || c == '+' || c == '/';
}

// Every spelling of a name to what it stands for; nullptr when no table knows
// it or it is not a well-formed name.
const Resolved* Resolve(absl::string_view name) {
  const Tables& t = GetTables();
  // Fast path: already a canonical name or a lowercase alias.
  if (auto it = t.by_name.find(name); it != t.by_name.end()) return it->second;
  if (!IsWellFormedFeatureName(name)) return nullptr;
  std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  if (int level = LevelOf(lower)) return &t.levels[level];
  auto lookup = [&](absl::string_view key) -> const Resolved* {
    auto it = t.by_name.find(key);
    return it == t.by_name.end() ? nullptr : it->second;
  };
  if (auto* r = lookup(lower)) return r;
  // GCC flag spelling: -mavx2
  if (absl::StartsWith(lower, "-m")) {
    if (auto* r = lookup(absl::string_view(lower).substr(2))) return r;
  }
  // Go x/sys/cpu spelling: HasAVX2, X86.HasAVX2, ARM64.HasASIMD
  absl::string_view tail = lower;
  if (size_t dot = tail.rfind('.');
      dot != absl::string_view::npos && absl::StartsWith(tail.substr(dot + 1), "has")) {
    tail = tail.substr(dot + 1);
  }
  if (absl::StartsWith(tail, "has")) return lookup(tail.substr(3));
  return nullptr;
}

// The number in "vN" or "N" (nullopt otherwise).
std::optional<int> SmallNumber(absl::string_view s) {
  if (s.empty() || s.size() > 2) return std::nullopt;
  int n = 0;
  for (char c : s) {
    if (!absl::ascii_isdigit(c)) return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

}  // namespace

bool IsWellFormedFeatureName(absl::string_view name) {
  name = absl::StripAsciiWhitespace(name);
  if (name.empty() || name.size() > kMaxFeatureNameBytes) return false;
  for (char c : name) {
    if (!FeatureNameChar(c)) return false;
  }
  return true;
}

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
  for (auto n : GetTables().levels[level].canonical) out.emplace_back(n);
  return out;
}

absl::Span<const absl::string_view> CanonicalFeatureViews(absl::string_view name) {
  const Resolved* r = Resolve(name);
  return r ? absl::MakeConstSpan(r->canonical) : absl::Span<const absl::string_view>();
}

const FeatureSet* FeatureNeed(absl::string_view name) {
  const Resolved* r = Resolve(name);
  return r ? &r->need : nullptr;
}

std::optional<size_t> FeatureBit(absl::string_view canonical) {
  const Tables& t = GetTables();
  auto it = t.bit.find(canonical);
  if (it == t.bit.end()) return std::nullopt;
  return it->second;
}

FeatureSet FeatureClosure(const FeatureSet& set) {
  const Tables& t = GetTables();
  FeatureSet out = set;
  for (size_t i = 0; i < t.rows.size(); ++i) {
    if (set.test(i)) out |= t.rows[i].need;
  }
  return out;
}

std::vector<absl::string_view> FeatureNames(const FeatureSet& set) {
  const Tables& t = GetTables();
  std::vector<absl::string_view> out;
  for (size_t i = 0; i < t.names.size(); ++i) {
    if (set.test(i)) out.push_back(t.names[i]);
  }
  return out;
}

FeatureSet PlatformLevelFeatures(absl::string_view architecture, absl::string_view variant) {
  const Tables& t = GetTables();
  FeatureSet out;
  auto add = [&](absl::Span<const absl::string_view> names) {
    for (auto n : names) out |= t.rows[t.bit.at(n)].need;
  };
  if (architecture == "amd64") {
    int level = 1;
    if (!variant.empty()) {
      if (variant[0] != 'v') return out;
      auto n = SmallNumber(variant.substr(1));
      if (!n || *n < 1 || *n > 4) return out;
      level = *n;
    }
    return t.levels[level].need;
  }
  if (architecture != "arm64") return out;
  absl::string_view v = variant.empty() ? absl::string_view("v8") : variant;
  if (v[0] != 'v') return out;
  v.remove_prefix(1);
  absl::string_view major_part = v, minor_part = "0";
  if (size_t dot = v.find('.'); dot != absl::string_view::npos) {
    major_part = v.substr(0, dot);
    minor_part = v.substr(dot + 1);
  }
  auto major = SmallNumber(major_part), minor = SmallNumber(minor_part);
  if (!major || !minor) return out;
  int v8_minor;
  if (*major == 8 && *minor <= 9) {
    v8_minor = *minor;
  } else if (*major == 9 && *minor <= 7) {
    v8_minor = std::min(*minor + 5, 9);
    add(kArm90);
  } else {
    return out;
  }
  const absl::Span<const absl::string_view> steps[] = {kArm80, kArm81, kArm82, kArm83,
                                                       kArm84, kArm85, kArm86};
  for (int m = 0; m <= v8_minor && m < 7; ++m) add(steps[m]);
  return out;
}

std::string HighestArm64Variant(const FeatureSet& has) {
  const FeatureSet closed = FeatureClosure(has);
  // A version is claimed when the host has all it needs and it needs more
  // than the version before: past the last version the table tells apart
  // (v8.6, v9.1), nothing newer is claimed.
  auto claims = [&](absl::string_view variant, absl::string_view before) {
    const FeatureSet need = PlatformLevelFeatures("arm64", variant);
    return (need & ~closed).none() && need != PlatformLevelFeatures("arm64", before);
  };
  int v8 = 0;
  for (int m = 1; m <= 9; ++m) {
    if (!claims(absl::StrCat("v8.", m), m == 1 ? "" : absl::StrCat("v8.", m - 1))) break;
    v8 = m;
  }
  if (v8 < 5 || !claims("v9", "v8.5")) return v8 == 0 ? "" : absl::StrCat("v8.", v8);
  int v9 = 0;
  for (int m = 1; m <= 7; ++m) {
    if (!claims(absl::StrCat("v9.", m), m == 1 ? "v9" : absl::StrCat("v9.", m - 1))) break;
    v9 = m;
  }
  return v9 == 0 ? "v9" : absl::StrCat("v9.", v9);
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

std::span<const absl::string_view> KnownCanonicalFeatures() { return GetTables().names; }

}  // namespace imgsel
