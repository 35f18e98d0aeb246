// Where a selection failed, carried on the failure's absl::Status as a
// payload, so callers branch on the stage instead of matching the message's
// words. The message stays what people read; the stage is what code reads.
//
//   kRequest    the request itself (a reference that does not parse)
//   kResolve    the registry: resolving or reading the reference
//   kIndex      the document: not an index or manifest imgsel can read
//   kBudget     the request's time budget ran out (DeadlineExceeded)
//   kMemory     the process's selection memory budget (memory_gate.h)
//
// A status without a stage came from outside the pipeline.
#pragma once

#include <optional>

#include "absl/status/status.h"

namespace imgsel {

enum class SelectionStage { kRequest, kResolve, kIndex, kBudget, kMemory };

// `status` (not OK) marked with `stage`.
absl::Status AtStage(absl::Status status, SelectionStage stage);

// The stage a failure was marked with, if any.
std::optional<SelectionStage> StageOf(const absl::Status& status);

}  // namespace imgsel
