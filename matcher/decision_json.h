// A Decision as JSON, the shape `imgsel select --output json` and the API's
// JSON form share:
//
//   {"selected": {"position", "digest", "mediaType", "size", "platform",
//                 "annotations"} | null,
//    "policy": "best" | "first-match", "fallback": bool, "fallbackReason"?,
//    "nothingToChoose"?: true,
//    "candidates": [{"position", "digest", "platform", "eligible", "score",
//                    "rank"?, "reasons": [...]}]}
//
// Pure function; thread-safe.
#pragma once

#include <string>

#include "matcher/select.h"

namespace imgsel {

class JsonWriter;

std::string DecisionToJson(const Decision& decision, int indent = 2);

// The members of that object, for documents that add their own around them.
void WriteDecisionJsonFields(JsonWriter& w, const Decision& decision);

// Writes a platform object (os, architecture, variant?, os.version?,
// os.features?, features?) as OCI spells it.
void WritePlatformJson(JsonWriter& w, const PlatformView& p);

}  // namespace imgsel
