// Corrupted variants of a real document, for the mutation and differential
// tests: bytes flipped, deleted, duplicated and truncated, structure
// characters and JSON fragments injected, runs of `[` or `{` inserted.
// Deterministic for a given generator state.
#pragma once

#include <random>
#include <string>

namespace imgsel::testing {

inline std::string Mutate(const std::string& seed, std::mt19937& rng) {
  static const char kInject[] =
      "{}[]\":,\\\n\t \x00\xff\xc3"
      "0123456789-.eEaztrufnl/";
  static const char* kFragments[] = {"true", "null", "false", "1e400", "\\u00",  "\\ud83d",
                                     "\"\"", "[]",   "{}",    "-0",    "\"a\":", ",,"};
  std::string s = seed;
  const int edits = 1 + static_cast<int>(rng() % 8);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    const size_t at = rng() % s.size();
    switch (rng() % 8) {
      case 0:
        s[at] = static_cast<char>(rng());
        break;
      case 1:
        s.erase(at, 1 + rng() % 16);
        break;
      case 2:
        s.insert(at, s.substr(rng() % s.size(), 1 + rng() % 32));
        break;
      case 3:
        s.resize(at);
        break;
      case 4:
        s.insert(at, 1, kInject[rng() % (sizeof(kInject) - 1)]);
        break;
      case 5:
        s.insert(at, std::string(1 + rng() % 80, "[{"[rng() % 2]));
        break;
      case 6:
        s.insert(at, kFragments[rng() % (sizeof(kFragments) / sizeof(kFragments[0]))]);
        break;
      case 7:
        s[at] = kInject[rng() % (sizeof(kInject) - 1)];
        break;
    }
  }
  return s;
}

}  // namespace imgsel::testing
