// The DOM-based reference reading of an index, for differential tests only.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "matcher/index.h"

namespace imgsel::oracle {

absl::StatusOr<ParsedIndex> DomParseIndex(absl::string_view json,
                                          absl::string_view source = "index",
                                          const ParseLimits& limits = {});

}  // namespace imgsel::oracle
