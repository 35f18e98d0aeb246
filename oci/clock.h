// The clock that ages what imgsel remembers.
//
// Two kinds of time run through imgsel. Deadlines and budgets bound real
// waits (a socket, a condition variable), so they read absl::Now() and are
// not faked. What is *remembered* for a while - disk cache records, the
// in-memory referrers listings, which referrers mode a repository speaks,
// bearer tokens - is aged by a Clock: production passes Clock::Real(),
// tests a FakeClock they move, so expiry is tested without waiting.
//
// Wall clocks jump (NTP steps, a VM resumed, an operator's `date -s`).
// Forward, an entry expires early: a refetch. Backward, an entry stamped
// "later than now" must not stay fresh for the length of the jump: FreshAt
// calls it stale, so the worst a jump of any size costs is one refetch.
#pragma once

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace imgsel {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // absl::Now(); one instance for the process, never destroyed.
  static const Clock& Real();
};

// Whether an entry stamped at `stored` is fresh at `now` for `ttl`:
// stored <= now < stored + ttl. An entry from the future (the clock went
// back since it was stamped) is stale.
bool FreshAt(absl::Time stored, absl::Duration ttl, absl::Time now);

// A clock a test sets and moves, in either direction. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}
  absl::Time Now() const override;
  void Set(absl::Time t);
  void Advance(absl::Duration d);  // negative: the clock goes back

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace imgsel
