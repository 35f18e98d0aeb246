#include "plugin/select_within.h"

#include <algorithm>

namespace imgsel::plugin {

int SelectionPlaces::in_flight() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

int SelectionPlaces::in_flight(absl::string_view registry) const {
  absl::MutexLock lock(&mu_);
  auto it = by_registry_.find(registry);
  return it == by_registry_.end() ? 0 : it->second;
}

std::optional<SelectionSlot> SelectionSlot::Take(std::shared_ptr<SelectionPlaces> places, int limit,
                                                 absl::string_view registry) {
  const int share = std::max(1, limit / 4);
  {
    absl::MutexLock lock(&places->mu_);
    if (places->total_ >= limit) return std::nullopt;
    int& mine = places->by_registry_[registry];
    if (mine >= share) {
      if (mine == 0) places->by_registry_.erase(registry);
      return std::nullopt;
    }
    ++mine;
    ++places->total_;
  }
  return SelectionSlot(std::move(places), std::string(registry));
}

SelectionSlot::~SelectionSlot() {
  if (places_ == nullptr) return;
  absl::MutexLock lock(&places_->mu_);
  --places_->total_;
  auto it = places_->by_registry_.find(registry_);
  if (it != places_->by_registry_.end() && --it->second <= 0) places_->by_registry_.erase(it);
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
