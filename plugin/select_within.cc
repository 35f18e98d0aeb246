#include "plugin/select_within.h"

#include <algorithm>

namespace imgsel::plugin {

std::optional<SelectionSlot> SelectionSlot::Take(std::shared_ptr<std::atomic<int>> running,
                                                 int limit) {
  if (running->fetch_add(1) >= limit) {
    running->fetch_sub(1);
    return std::nullopt;
  }
  return SelectionSlot(std::move(running));
}

SelectionSlot::~SelectionSlot() {
  if (running_ != nullptr) running_->fetch_sub(1);
}

absl::StatusOr<Selection> SelectWithin(SelectFn select, const SelectionRequest& request,
                                       absl::Duration budget, SelectionSlot slot) {
  // The budget travels with the request: every registry request, every wait
  // for a registry slot and every spec parse of the pipeline ends by it, so
  // the selection runs here, on the caller's thread, and returns in time.
  SelectionRequest bounded = request;
  bounded.budget = std::min(request.budget, budget);
  absl::StatusOr<Selection> result = select(bounded);
  (void)slot;  // given back when this returns
  return result;
}

}  // namespace imgsel::plugin
