#include "matcher/suggest.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace imgsel {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  // Keys are short; anything long is no typo of a key.
  if (a.size() > 256 || b.size() > 256) return SIZE_MAX;
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] =
          std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string UnknownKeyMessage(absl::string_view key, std::initializer_list<absl::string_view> known,
                              absl::string_view section) {
  absl::string_view best;
  size_t best_distance = SIZE_MAX;
  for (auto want : known) {
    size_t d = EditDistance(key, want);
    if (d < best_distance) best_distance = d, best = want;
  }
  std::string what = absl::StrCat("unknown key \"", key, "\"",
                                  section.empty() ? "" : absl::StrCat(" in ", section));
  if (!best.empty() && best_distance <= std::max<size_t>(2, best.size() / 3)) {
    absl::StrAppend(&what, "; did you mean \"", best, "\"?");
  } else {
    absl::StrAppend(&what, "; known keys: ", absl::StrJoin(known, ", "));
  }
  return what;
}

}  // namespace imgsel
