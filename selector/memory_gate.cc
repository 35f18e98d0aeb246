#include "selector/memory_gate.h"

#include <malloc.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace imgsel {

MemoryGate::Share::~Share() {
  if (gate_ != nullptr && bytes_ > 0) gate_->Release(bytes_);
}

absl::StatusOr<MemoryGate::Share> MemoryGate::Acquire(size_t input_bytes, absl::Time deadline) {
  if (input_bytes < kUngatedInputBytes) return Share();
  const size_t want = std::min(budget_, input_bytes * kMemoryPerInputByte);
  absl::MutexLock lock(&mu_);
  auto fits = [this, want]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return used_ + want <= budget_; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&fits), deadline)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "large selections are using the memory budget (", budget_ >> 20, " MiB); this one (",
        input_bytes, " bytes of input) did not get its share in time"));
  }
  used_ += want;
  return Share(this, want);
}

void MemoryGate::Release(size_t bytes) {
  {
    absl::MutexLock lock(&mu_);
    used_ -= bytes;
  }
  ReturnFreedMemory();
}

size_t MemoryGate::in_use() const {
  absl::MutexLock lock(&mu_);
  return used_;
}

MemoryGate& MemoryGate::Process() {
  static MemoryGate* gate = new MemoryGate(kSelectionMemoryBudget);
  return *gate;
}

void ReturnFreedMemory() { malloc_trim(0); }

}  // namespace imgsel
