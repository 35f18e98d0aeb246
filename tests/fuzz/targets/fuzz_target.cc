// One libFuzzer target per entry point of entry_points.h: this file is
// compiled once per target with IMGSEL_FUZZ_TARGET naming the entry point.
// A parser's answer that breaks its promises aborts, so libFuzzer keeps the
// input as a crash, like a sanitizer report.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/fuzz/targets/entry_points.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const imgsel::fuzz::FuzzEntryPoint* entry =
      imgsel::fuzz::FindEntryPoint(IMGSEL_FUZZ_TARGET);
  if (entry == nullptr) {
    std::fprintf(stderr, "no fuzz entry point named %s\n", IMGSEL_FUZZ_TARGET);
    std::abort();
  }
  const std::string problem =
      entry->run(absl::string_view(reinterpret_cast<const char*>(data), size));
  if (!problem.empty()) {
    std::fprintf(stderr, "%s: %s\n", IMGSEL_FUZZ_TARGET, problem.c_str());
    std::abort();
  }
  return 0;
}
