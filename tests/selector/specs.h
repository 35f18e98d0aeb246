// What the pipeline tests select with: an x86-64-v3 linux host running
// kernel 6.1, and NFD compatibility specs it fails or passes.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "matcher/features.h"
#include "matcher/host_profile.h"

namespace imgsel::testing {

// linux/amd64/v3 with the level's features and kernel.version 6.1.
inline HostProfile KernelSixV3Host() {
  HostProfile h;
  h.platform.os = "linux";
  h.platform.architecture = "amd64";
  h.platform.variant = "v3";
  for (auto& f : X86LevelFeatures(3)) h.features.insert(f);
  h.nfd.attributes["kernel.version"] = {{"major", "6"}, {"minor", "1"}};
  return h;
}

// Needs kernel 7 or later: KernelSixV3Host fails it.
inline constexpr char kNeedsKernel7Spec[] = R"(version: v1alpha1
compatibilities:
- rules:
  - name: kernel 7
    matchFeatures:
    - feature: kernel.version
      matchExpressions:
        major: {op: Ge, value: ["7"]}
)";

// Needs kernel 5 or later, weighing `weight` when met: KernelSixV3Host
// passes it.
inline std::string KernelAtLeast5Spec(int weight) {
  return absl::StrCat(R"(version: v1alpha1
compatibilities:
- weight: )",
                      weight, R"(
  rules:
  - name: kernel 5
    matchFeatures:
    - feature: kernel.version
      matchExpressions:
        major: {op: Ge, value: ["5"]}
)");
}

}  // namespace imgsel::testing
