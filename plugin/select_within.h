// A selection that may wait on registries, bounded by a budget, and the
// slot it holds while it runs. The budget is the request's own
// (SelectionRequest::budget): the pipeline hands its deadline to every
// registry request and every wait, so the selection returns by it on the
// caller's thread, with no thread left behind. Shared by PullImage
// (PullHandler) and the Selector API's Select by reference.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "selector/pipeline.h"

namespace imgsel::plugin {

using SelectFn = std::function<absl::StatusOr<Selection>(const SelectionRequest&)>;

// One place among at most `limit` selections running at once, counted in a
// counter shared with the threads that run them. The place is given back
// when the slot is destroyed, whichever way that happens: a request refused
// after the slot was taken, a selection that finished, one its caller
// stopped waiting for. Move-only; thread-compatible.
class SelectionSlot {
 public:
  // A slot, or nullopt when `limit` are taken already.
  static std::optional<SelectionSlot> Take(std::shared_ptr<std::atomic<int>> running, int limit);

  SelectionSlot(SelectionSlot&& other) noexcept = default;
  SelectionSlot& operator=(SelectionSlot&&) = delete;
  SelectionSlot(const SelectionSlot&) = delete;
  SelectionSlot& operator=(const SelectionSlot&) = delete;
  ~SelectionSlot();

 private:
  explicit SelectionSlot(std::shared_ptr<std::atomic<int>> running)
      : running_(std::move(running)) {}
  std::shared_ptr<std::atomic<int>> running_;  // null once moved from
};

// Runs `select(request)` with the request's budget cut to `budget`, holding
// `slot` until it returns. A selection that runs out of time answers
// DEADLINE_EXCEEDED ("selection budget of … ran out while …").
absl::StatusOr<Selection> SelectWithin(SelectFn select, const SelectionRequest& request,
                                       absl::Duration budget, SelectionSlot slot);

}  // namespace imgsel::plugin
