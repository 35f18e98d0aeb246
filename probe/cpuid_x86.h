// x86 CPU features straight from the CPUID instruction, checked against what
// the operating system enabled.
//
// A CPUID bit says the silicon has a feature; the OS must also save its
// register state on a context switch, which XGETBV reports in XCR0:
//
//   XCR0 bits   state            gates
//   1, 2        SSE + AVX (YMM)  avx avx2 fma f16c vaes vpclmulqdq avx_vnni fma4 xop
//   5, 6, 7     opmask, ZMM      every avx512*
//   17, 18      AMX tiles        amx_*
//
// XGETBV itself exists only when CPUID.1:ECX.OSXSAVE is set (that bit is the
// canonical feature "xsave", as in the psABI's x86-64-v3 list). Thread-safe.
#pragma once

#include <optional>
#include <set>
#include <string>

namespace imgsel::probe {

struct X86Cpu {
  std::string vendor_id;           // CPUID leaf 0: "GenuineIntel", "AuthenticAMD"
  std::string brand;               // leaves 0x80000002-4, trimmed
  int family = 0;                  // base family + extended family (when base is 0xF)
  int model = 0;                   // base model + extended model << 4 (families 6 and 0xF)
  std::set<std::string> features;  // canonical names (matcher/features.h) the OS enabled
  unsigned long long xcr0 = 0;     // 0 when OSXSAVE is off
};

// The CPU this runs on; nullopt on a non-x86 build.
std::optional<X86Cpu> ProbeCpuid();

// The highest psABI level (1-4) whose features are all in `features`
// (canonical names); 0 when even the baseline is incomplete.
int X86Level(const std::set<std::string>& features);

}  // namespace imgsel::probe
