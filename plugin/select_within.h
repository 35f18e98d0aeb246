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
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "selector/pipeline.h"

namespace imgsel::plugin {

using SelectFn = std::function<absl::StatusOr<Selection>(const SelectionRequest&)>;

// Places for selections that wait on registries, shared by every caller of
// one kind (pulls, or Selects by reference): at most `limit` at once, and
// at most a quarter of them (at least one) for any one registry, so a slow
// or hostile registry that many requests name cannot take the places a
// healthy registry's selections need. Thread-safe.
class SelectionPlaces {
 public:
  SelectionPlaces() = default;
  // Places taken now, in all and by one registry.
  int in_flight() const;
  int in_flight(absl::string_view registry) const;

 private:
  friend class SelectionSlot;
  mutable absl::Mutex mu_;
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  // Only registries with a place taken (bounded by `limit` entries).
  absl::flat_hash_map<std::string, int> by_registry_ ABSL_GUARDED_BY(mu_);
};

// One place, given back when the slot is destroyed, whichever way that
// happens: a request refused after the slot was taken, a selection that
// finished. Move-only; thread-compatible.
class SelectionSlot {
 public:
  // A slot for a selection from `registry`, or nullopt when `limit` places
  // are taken, or the registry's share of them (max(1, limit / 4)).
  static std::optional<SelectionSlot> Take(std::shared_ptr<SelectionPlaces> places, int limit,
                                           absl::string_view registry);

  SelectionSlot(SelectionSlot&& other) noexcept = default;
  SelectionSlot& operator=(SelectionSlot&&) = delete;
  SelectionSlot(const SelectionSlot&) = delete;
  SelectionSlot& operator=(const SelectionSlot&) = delete;
  ~SelectionSlot();

 private:
  SelectionSlot(std::shared_ptr<SelectionPlaces> places, std::string registry)
      : places_(std::move(places)), registry_(std::move(registry)) {}
  std::shared_ptr<SelectionPlaces> places_;  // null once moved from
  std::string registry_;
};

// Runs `select(request)` with the request's budget cut to `budget`, holding
// `slot` until it returns. A selection that runs out of time answers
// DEADLINE_EXCEEDED ("selection budget of … ran out while …").
absl::StatusOr<Selection> SelectWithin(SelectFn select, const SelectionRequest& request,
                                       absl::Duration budget, SelectionSlot slot);

}  // namespace imgsel::plugin
