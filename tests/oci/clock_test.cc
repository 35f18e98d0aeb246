// FreshAt, the one rule for the age of a remembered answer, and the fake
// clock tests move.
#include "oci/clock.h"

#include "gtest/gtest.h"

namespace imgsel {
namespace {

TEST(FreshAt, FromTheStampUntilTheTtlAndNeverBeforeTheStamp) {
  const absl::Time stamped = absl::FromUnixSeconds(1'000'000);
  const struct {
    absl::Duration now;  // from `stamped`
    absl::Duration ttl;
    bool fresh;
  } cases[] = {
      {absl::ZeroDuration(), absl::Minutes(10), true},
      {absl::Minutes(10) - absl::Nanoseconds(1), absl::Minutes(10), true},
      {absl::Minutes(10), absl::Minutes(10), false},
      {absl::Hours(1), absl::Minutes(10), false},
      {-absl::Nanoseconds(1), absl::Minutes(10), false},  // the clock went back
      {-absl::Hours(24 * 365), absl::Minutes(10), false},
      {absl::ZeroDuration(), absl::ZeroDuration(), false},  // no TTL: never remembered
      {absl::ZeroDuration(), -absl::Seconds(1), false},
      {absl::Hours(1), absl::InfiniteDuration(), true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(FreshAt(stamped, c.ttl, stamped + c.now), c.fresh) << c.now << " " << c.ttl;
  }
}

TEST(FakeClock, MovesOnlyWhenTold) {
  FakeClock clock(absl::FromUnixSeconds(100));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(100));
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(105));
  clock.Advance(-absl::Seconds(10));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(95));
  clock.Set(absl::FromUnixSeconds(7));
  EXPECT_EQ(clock.Now(), absl::FromUnixSeconds(7));
}

TEST(RealClock, IsTheWallClock) {
  const absl::Time before = absl::Now();
  const absl::Time read = Clock::Real().Now();
  EXPECT_LE(before, read);
  EXPECT_LE(read, absl::Now());
}

}  // namespace
}  // namespace imgsel
