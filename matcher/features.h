// Proposal E features: one alias table from every common spelling of a CPU
// feature to one canonical lowercase name.
//
// Canonical names are the Linux /proc/cpuinfo flag names, except where the
// kernel's name is historical: SSE3 is "sse3" (cpuinfo: pni), LZCNT is
// "lzcnt" (cpuinfo: abm), SHA is "sha_ni". Accepted spellings:
//
//   source              example          canonical
//   /proc/cpuinfo       pni, sse4_1      sse3, sse4_1
//   GCC -m / builtin    -msse4.1, bmi    sse4_1, bmi1
//   Go x/sys/cpu        HasSSE41         sse4_1
//   NFD (klauspost)     SSE4, FMA3       sse4_1, fma
//   x86-64 psABI        LAHF-SAHF        lahf_lm
//   arm64 HWCAP/GCC     dotprod, lse     asimddp, atomics
//
// The psABI levels expand to their feature lists:
//   x86-64-v2  cx16 lahf_lm popcnt sse3 sse4_1 sse4_2 ssse3 (+ baseline)
//   x86-64-v3  v2 + avx avx2 bmi1 bmi2 f16c fma lzcnt movbe xsave
//   x86-64-v4  v3 + avx512f avx512bw avx512cd avx512dq avx512vl
//
// Lookup is case-insensitive and thread-safe (the table is immutable).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace imgsel {

// The canonical names `name` stands for: one name, or a level's list.
// Empty when no table knows the name.
std::vector<std::string> CanonicalFeatures(absl::string_view name);

// The same without allocating in the common case: views of static storage,
// valid for the life of the program. Empty when no table knows the name.
absl::Span<const absl::string_view> CanonicalFeatureViews(absl::string_view name);

// The canonical name of a single feature, or nullopt (levels are not single).
std::optional<std::string> CanonicalFeature(absl::string_view name);

// Every canonical feature name the table knows, for the probe and docs.
std::span<const absl::string_view> KnownCanonicalFeatures();

// The name NFD's cpu.cpuid feature uses for a canonical feature (klauspost/cpuid
// spelling: "sse4_1" -> "SSE4", "fma" -> "FMA3", "pclmulqdq" -> "CLMUL"); for
// names without a special spelling, the canonical name in upper case.
std::string NfdCpuidName(absl::string_view canonical);

// psABI level (2, 3 or 4) feature lists, baseline included; empty otherwise.
std::vector<std::string> X86LevelFeatures(int level);

}  // namespace imgsel
