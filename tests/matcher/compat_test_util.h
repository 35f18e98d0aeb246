// Helpers shared by the compatibility spec tests.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "matcher/compat_eval.h"
#include "matcher/compat_spec.h"
#include "matcher/host_profile.h"

namespace imgsel::testing {

inline std::string ReadTestData(const std::string& relative) {
  std::ifstream in(absl::StrCat(IMGSEL_TEST_DATA, "/", relative), std::ios::binary);
  EXPECT_TRUE(in.good()) << relative;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline HostProfile LoadHost(const std::string& relative) {
  std::string json = ReadTestData(relative);
  auto host = ParseHostProfile(json, relative);
  EXPECT_TRUE(host.ok()) << host.status();
  return host.ok() ? *host : HostProfile{};
}

// A one-set, one-rule NFD spec whose only term is `feature` with the given
// matchExpressions body (YAML flow mapping text).
inline std::string OneTermSpec(const std::string& feature, const std::string& expressions) {
  return absl::StrCat(
      "version: v1alpha1\n"
      "compatibilities:\n"
      "- rules:\n"
      "  - name: r\n"
      "    matchFeatures:\n"
      "    - feature: ",
      feature,
      "\n"
      "      matchExpressions: ",
      expressions, "\n");
}

}  // namespace imgsel::testing
