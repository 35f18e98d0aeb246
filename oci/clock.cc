#include "oci/clock.h"

#include "absl/time/clock.h"

namespace imgsel {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock& Clock::Real() {
  static const RealClock* const real = new RealClock();
  return *real;
}

bool FreshAt(absl::Time stored, absl::Duration ttl, absl::Time now) {
  return stored <= now && now < stored + ttl;
}

absl::Time FakeClock::Now() const {
  absl::MutexLock lock(&mu_);
  return now_;
}

void FakeClock::Set(absl::Time t) {
  absl::MutexLock lock(&mu_);
  now_ = t;
}

void FakeClock::Advance(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  now_ += d;
}

}  // namespace imgsel
