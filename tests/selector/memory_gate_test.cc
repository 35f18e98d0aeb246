// The selection memory budget (selector/memory_gate.h): what a selection's
// share is, by its input, and that a selection that cannot get it waits
// only until its deadline.
#include "selector/memory_gate.h"

#include <optional>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

TEST(MemoryGate, AShareFollowsTheInputUpToTheBudget) {
  struct Case {
    const char* what;
    size_t input_bytes;
    size_t share;
  };
  const Case cases[] = {
      {"small input: no share", kUngatedInputBytes - 1, 0},
      {"at the edge: gated", kUngatedInputBytes, kUngatedInputBytes * kMemoryPerInputByte},
      {"1 MiB of index", 1 << 20, (1 << 20) * kMemoryPerInputByte},
      {"more than the budget covers: the whole budget", kSelectionMemoryBudget,
       kSelectionMemoryBudget},
  };
  for (const Case& c : cases) {
    MemoryGate gate(kSelectionMemoryBudget);
    auto share = gate.Acquire(c.input_bytes, absl::InfiniteFuture());
    ASSERT_TRUE(share.ok()) << c.what << ": " << share.status();
    EXPECT_EQ(gate.in_use(), c.share) << c.what;
  }
}

TEST(MemoryGate, ABudgetSpentWaitsUntilTheDeadlineThenRefuses) {
  MemoryGate gate(kSelectionMemoryBudget);
  std::optional<MemoryGate::Share> whole;
  {
    auto share = gate.Acquire(kSelectionMemoryBudget, absl::InfiniteFuture());
    ASSERT_TRUE(share.ok()) << share.status();
    whole.emplace(std::move(*share));
  }
  ASSERT_EQ(gate.in_use(), kSelectionMemoryBudget);

  auto refused = gate.Acquire(1 << 20, absl::Now() + absl::Milliseconds(20));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted) << refused.status();
  auto small = gate.Acquire(kUngatedInputBytes - 1, absl::Now());
  EXPECT_TRUE(small.ok()) << "a small selection never waits: " << small.status();

  whole.reset();
  EXPECT_EQ(gate.in_use(), 0u);
  auto after = gate.Acquire(1 << 20, absl::Now() + absl::Seconds(5));
  EXPECT_TRUE(after.ok()) << "given back, the budget serves again: " << after.status();
}

}  // namespace
}  // namespace imgsel
