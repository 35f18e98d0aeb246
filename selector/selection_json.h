// A Selection as JSON: the decision's members (decision_json.h) plus where
// the index came from and every compatibility artifact's evaluation:
//
//   {"reference", "repository", "tag"?, "digest", "mediaType", "isIndex",
//    "roundTrips", "elapsedMs", "warnings": [...],
//    "selected", "policy", "fallback", ... (as DecisionToJson),
//    "compatibility": {"<entry digest>": [{"artifact", "kind", "onIndex",
//        "matched", "weight"?, "specs": [{"name"?, "sets": [...validate-node...]}]}]}}
//
// Pure function; thread-safe.
#pragma once

#include <string>

#include "selector/pipeline.h"

namespace imgsel {

std::string SelectionToJson(const Selection& selection, int indent = 2);

}  // namespace imgsel
