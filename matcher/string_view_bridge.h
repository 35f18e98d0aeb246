// Debian's abseil has its own absl::string_view (not an alias of
// std::string_view), while simdjson speaks std::string_view. These two
// conversions are the only bridge between them.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace imgsel {

inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }

}  // namespace imgsel
