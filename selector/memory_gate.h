// One memory budget for the work whose memory grows with its input: reading
// and ranking a large index, writing a large answer. Each such selection
// takes a share of the budget, sized from its input, before it starts, and
// gives it back when it ends; a selection that cannot get its share by its
// deadline does not start (ResourceExhausted). Small inputs, the common
// case, pass without a lock.
//
// The budget and the costs are set so that imgseld's worst allowed load
// stays under half of its unit's MemoryMax=256M (docs/RELIABILITY.md,
// "Memory"): every selection that waits is a request already received, and
// only those holding a share build anything from it.
//
// Thread-safe.
#pragma once

#include <cstddef>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imgsel {

// The whole budget, and what counts as small: under kUngatedInputBytes of
// input a selection costs well under a megabyte and takes no share.
inline constexpr size_t kSelectionMemoryBudget = 48 << 20;
inline constexpr size_t kUngatedInputBytes = 256 << 10;
// Bytes of memory a selection builds per byte of index, measured on the
// worst index the limits allow (10,000 entries in 3.4 MB) answered in full
// with its decision JSON: the parsed index, the decision, the JSON and the
// answer. Measured with `plugin_bench --memory`.
inline constexpr size_t kMemoryPerInputByte = 16;

class MemoryGate {
 public:
  explicit MemoryGate(size_t budget) : budget_(budget) {}

  // A share held until destroyed. Move-only.
  class Share {
   public:
    Share() = default;
    Share(Share&& other) noexcept : gate_(other.gate_), bytes_(other.bytes_) {
      other.gate_ = nullptr;
    }
    Share& operator=(Share&&) = delete;
    Share(const Share&) = delete;
    ~Share();

   private:
    friend class MemoryGate;
    Share(MemoryGate* gate, size_t bytes) : gate_(gate), bytes_(bytes) {}
    MemoryGate* gate_ = nullptr;
    size_t bytes_ = 0;
  };

  // The share for a selection with `input_bytes` of input: nothing under
  // kUngatedInputBytes, else input_bytes * kMemoryPerInputByte capped at the
  // budget, waiting for it until `deadline`.
  absl::StatusOr<Share> Acquire(size_t input_bytes, absl::Time deadline);

  size_t in_use() const;

  // The process's gate, of kSelectionMemoryBudget.
  static MemoryGate& Process();

 private:
  void Release(size_t bytes);

  const size_t budget_;
  mutable absl::Mutex mu_;
  size_t used_ ABSL_GUARDED_BY(mu_) = 0;
};

// Hands memory freed by a large selection back to the system (malloc keeps
// freed pages of its arenas otherwise, and RSS would stay at the burst's
// peak). Cheap when nothing is to be returned.
void ReturnFreedMemory();

}  // namespace imgsel
