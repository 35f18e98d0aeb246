#include "probe/cpuid_x86.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/ascii.h"
#include "matcher/features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace imgsel::probe {

int X86Level(const std::set<std::string>& features) {
  int level = 0;
  for (int l = 1; l <= 4; ++l) {
    for (const std::string& f : X86LevelFeatures(l)) {
      if (!features.count(f)) return level;
    }
    level = l;
  }
  return level;
}

#if defined(__x86_64__) || defined(__i386__)
namespace {

enum Reg { kEax, kEbx, kEcx, kEdx };
enum Gate { kNone, kAvxState, kAvx512State, kAmxState };

struct CpuidBit {
  uint32_t leaf;
  uint32_t subleaf;
  Reg reg;
  int bit;
  const char* canonical;
  Gate gate;
};

// Intel SDM vol. 2A "CPUID", AMD APM vol. 3 appendix E.
constexpr CpuidBit kBits[] = {
    {1, 0, kEdx, 0, "fpu", kNone},
    {1, 0, kEdx, 8, "cx8", kNone},
    {1, 0, kEdx, 15, "cmov", kNone},
    {1, 0, kEdx, 23, "mmx", kNone},
    {1, 0, kEdx, 24, "fxsr", kNone},
    {1, 0, kEdx, 25, "sse", kNone},
    {1, 0, kEdx, 26, "sse2", kNone},
    {1, 0, kEcx, 0, "sse3", kNone},
    {1, 0, kEcx, 1, "pclmulqdq", kNone},
    {1, 0, kEcx, 9, "ssse3", kNone},
    {1, 0, kEcx, 12, "fma", kAvxState},
    {1, 0, kEcx, 13, "cx16", kNone},
    {1, 0, kEcx, 19, "sse4_1", kNone},
    {1, 0, kEcx, 20, "sse4_2", kNone},
    {1, 0, kEcx, 22, "movbe", kNone},
    {1, 0, kEcx, 23, "popcnt", kNone},
    {1, 0, kEcx, 25, "aes", kNone},
    {1, 0, kEcx, 27, "xsave", kNone},  // OSXSAVE: the OS enabled XSAVE
    {1, 0, kEcx, 28, "avx", kAvxState},
    {1, 0, kEcx, 29, "f16c", kAvxState},
    {1, 0, kEcx, 30, "rdrand", kNone},
    {7, 0, kEbx, 3, "bmi1", kNone},
    {7, 0, kEbx, 4, "hle", kNone},
    {7, 0, kEbx, 5, "avx2", kAvxState},
    {7, 0, kEbx, 8, "bmi2", kNone},
    {7, 0, kEbx, 9, "erms", kNone},
    {7, 0, kEbx, 11, "rtm", kNone},
    {7, 0, kEbx, 16, "avx512f", kAvx512State},
    {7, 0, kEbx, 17, "avx512dq", kAvx512State},
    {7, 0, kEbx, 18, "rdseed", kNone},
    {7, 0, kEbx, 19, "adx", kNone},
    {7, 0, kEbx, 21, "avx512ifma", kAvx512State},
    {7, 0, kEbx, 23, "clflushopt", kNone},
    {7, 0, kEbx, 24, "clwb", kNone},
    {7, 0, kEbx, 28, "avx512cd", kAvx512State},
    {7, 0, kEbx, 29, "sha_ni", kNone},
    {7, 0, kEbx, 30, "avx512bw", kAvx512State},
    {7, 0, kEbx, 31, "avx512vl", kAvx512State},
    {7, 0, kEcx, 1, "avx512vbmi", kAvx512State},
    {7, 0, kEcx, 6, "avx512vbmi2", kAvx512State},
    {7, 0, kEcx, 8, "gfni", kNone},
    {7, 0, kEcx, 9, "vaes", kAvxState},
    {7, 0, kEcx, 10, "vpclmulqdq", kAvxState},
    {7, 0, kEcx, 11, "avx512vnni", kAvx512State},
    {7, 0, kEcx, 12, "avx512bitalg", kAvx512State},
    {7, 0, kEcx, 14, "avx512vpopcntdq", kAvx512State},
    {7, 0, kEcx, 27, "movdiri", kNone},
    {7, 0, kEcx, 28, "movdir64b", kNone},
    {7, 0, kEdx, 4, "fsrm", kNone},
    {7, 0, kEdx, 14, "serialize", kNone},
    {7, 0, kEdx, 22, "amx_bf16", kAmxState},
    {7, 0, kEdx, 23, "avx512fp16", kAvx512State},
    {7, 0, kEdx, 24, "amx_tile", kAmxState},
    {7, 0, kEdx, 25, "amx_int8", kAmxState},
    {7, 1, kEax, 4, "avx_vnni", kAvxState},
    {7, 1, kEax, 5, "avx512bf16", kAvx512State},
    {0x80000001, 0, kEcx, 0, "lahf_lm", kNone},
    {0x80000001, 0, kEcx, 5, "lzcnt", kNone},  // AMD's ABM bit; LZCNT on Intel too
    {0x80000001, 0, kEcx, 6, "sse4a", kNone},
    {0x80000001, 0, kEcx, 11, "xop", kAvxState},
    {0x80000001, 0, kEcx, 16, "fma4", kAvxState},
};

constexpr uint64_t kXcr0Avx = (1u << 1) | (1u << 2);
constexpr uint64_t kXcr0Avx512 = kXcr0Avx | (1u << 5) | (1u << 6) | (1u << 7);
constexpr uint64_t kXcr0Amx = (1u << 17) | (1u << 18);

struct Regs {
  uint32_t r[4] = {0, 0, 0, 0};
};

Regs Cpuid(uint32_t leaf, uint32_t subleaf, uint32_t max_basic, uint32_t max_ext) {
  Regs out;
  uint32_t max = leaf >= 0x80000000u ? max_ext : max_basic;
  if (leaf > max) return out;
  __cpuid_count(leaf, subleaf, out.r[kEax], out.r[kEbx], out.r[kEcx], out.r[kEdx]);
  return out;
}

uint64_t Xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

}  // namespace

std::optional<X86Cpu> ProbeCpuid() {
  X86Cpu cpu;
  uint32_t eax, ebx, ecx, edx;
  __cpuid(0, eax, ebx, ecx, edx);
  uint32_t max_basic = eax;
  char vendor[13];
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  vendor[12] = '\0';
  cpu.vendor_id = vendor;
  __cpuid(0x80000000u, eax, ebx, ecx, edx);
  uint32_t max_ext = eax;

  Regs leaf1 = Cpuid(1, 0, max_basic, max_ext);
  uint32_t sig = leaf1.r[kEax];
  int base_family = (sig >> 8) & 0xf, base_model = (sig >> 4) & 0xf;
  cpu.family = base_family == 0xf ? base_family + ((sig >> 20) & 0xff) : base_family;
  cpu.model = (base_family == 6 || base_family == 0xf) ? base_model + (((sig >> 16) & 0xf) << 4)
                                                       : base_model;

  if (max_ext >= 0x80000004u) {
    char brand[49] = {0};
    for (uint32_t i = 0; i < 3; ++i) {
      Regs b = Cpuid(0x80000002u + i, 0, max_basic, max_ext);
      std::memcpy(brand + size_t{16} * i, b.r, 16);
    }
    cpu.brand = std::string(absl::StripAsciiWhitespace(brand));
  }

  const bool osxsave = (leaf1.r[kEcx] >> 27) & 1;
  cpu.xcr0 = osxsave ? Xgetbv0() : 0;
  auto enabled = [&](Gate g) {
    switch (g) {
      case kNone:
        return true;
      case kAvxState:
        return (cpu.xcr0 & kXcr0Avx) == kXcr0Avx;
      case kAvx512State:
        return (cpu.xcr0 & kXcr0Avx512) == kXcr0Avx512;
      case kAmxState:
        return (cpu.xcr0 & kXcr0Amx) == kXcr0Amx;
    }
    return false;
  };
  // CPUID traps to the hypervisor in a VM: ask each leaf once.
  Regs leaf7 = Cpuid(7, 0, max_basic, max_ext);
  Regs leaf7_1 = leaf7.r[kEax] >= 1 ? Cpuid(7, 1, max_basic, max_ext) : Regs{};
  Regs ext1 = Cpuid(0x80000001u, 0, max_basic, max_ext);
  for (const CpuidBit& b : kBits) {
    const Regs& r = b.leaf == 1 ? leaf1 : b.leaf == 7 ? (b.subleaf == 0 ? leaf7 : leaf7_1) : ext1;
    if (((r.r[b.reg] >> b.bit) & 1) && enabled(b.gate)) cpu.features.emplace(b.canonical);
  }
  return cpu;
}

#else

std::optional<X86Cpu> ProbeCpuid() { return std::nullopt; }

#endif

}  // namespace imgsel::probe
