// "Did you mean": the message for a key nobody reads, with the closest
// known key when one is close enough to be a typo, else the known keys.
// Used wherever a file from outside names keys (imgsel.toml, host profiles),
// so a misspelled key is an error that says what was meant, never ignored.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>

#include "absl/strings/string_view.h"

namespace imgsel {

// Levenshtein distance, bounded in cost by the (short) key lengths.
size_t EditDistance(absl::string_view a, absl::string_view b);

// `unknown key "featurez" in platform; did you mean "features"?` (the
// section part only when `section` is not empty).
std::string UnknownKeyMessage(absl::string_view key, std::initializer_list<absl::string_view> known,
                              absl::string_view section);

}  // namespace imgsel
