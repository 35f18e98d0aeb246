// A selection that may wait on registries, bounded by a budget: it runs on
// a thread of its own, and the caller stops waiting when the budget runs
// out. The thread then finishes on its own, bounded by the registry
// client's timeouts, and only then gives back its slot in `running`. Shared
// by PullImage (PullHandler) and the Selector API's Select by reference.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "selector/pipeline.h"

namespace imgsel::plugin {

using SelectFn = std::function<absl::StatusOr<Selection>(const SelectionRequest&)>;

// Runs `select(request)` (the request and its credentials copied for the
// thread) and returns its result, or DEADLINE_EXCEEDED ("selection budget
// of … ran out") after `budget`. `running` was incremented by the caller
// for this selection; the thread decrements it when the selection ends.
// `select` must own what it uses: it may outlive the caller.
absl::StatusOr<Selection> SelectWithin(SelectFn select, const SelectionRequest& request,
                                       absl::Duration budget,
                                       std::shared_ptr<std::atomic<int>> running);

}  // namespace imgsel::plugin
