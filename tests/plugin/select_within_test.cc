#include "plugin/select_within.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include "plugin/call_threads.h"

namespace imgsel::plugin {
namespace {

// One registry named by many requests takes at most its share of the
// places; another registry's selection still gets one.
TEST(SelectionSlotTest, OneRegistryCannotTakeEveryPlace) {
  auto places = std::make_shared<SelectionPlaces>();
  constexpr int kLimit = 8;  // a share of 2
  std::vector<SelectionSlot> slow;
  for (int i = 0; i < 100; ++i) {
    if (auto s = SelectionSlot::Take(places, kLimit, "slow.example")) slow.push_back(*std::move(s));
  }
  EXPECT_EQ(slow.size(), 2u);
  EXPECT_EQ(places->in_flight("slow.example"), 2);
  std::vector<SelectionSlot> others;
  for (const char* r :
       {"a.example", "a.example", "b.example", "b.example", "c.example", "c.example"}) {
    auto s = SelectionSlot::Take(places, kLimit, r);
    ASSERT_TRUE(s.has_value()) << r;
    others.push_back(*std::move(s));
  }
  EXPECT_EQ(places->in_flight(), kLimit);
  EXPECT_FALSE(SelectionSlot::Take(places, kLimit, "d.example").has_value()) << "over the limit";
  others.clear();
  slow.clear();
  EXPECT_EQ(places->in_flight(), 0) << "every place is given back";
  EXPECT_EQ(places->in_flight("slow.example"), 0);
  // A limit under 4 still gives each registry one place.
  EXPECT_TRUE(SelectionSlot::Take(places, 1, "x").has_value());
}

// The selection runs on the caller's thread with its budget cut to the
// given one, and the slot is held until it returns.
TEST(SelectWithinTest, RunsWithTheBudgetAndHoldsTheSlot) {
  auto places = std::make_shared<SelectionPlaces>();
  auto slot = SelectionSlot::Take(places, 4, "r");
  ASSERT_TRUE(slot.has_value());
  SelectionRequest req;
  req.reference = "r/app:v1";
  absl::Duration seen = absl::ZeroDuration();
  int held = -1;
  auto result = SelectWithin(
      [&](const SelectionRequest& r) -> absl::StatusOr<Selection> {
        seen = r.budget;
        held = places->in_flight();
        return absl::DeadlineExceededError("selection budget of 30ms ran out while resolving");
      },
      req, absl::Milliseconds(30), *std::move(slot));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(seen, absl::Milliseconds(30));
  EXPECT_EQ(held, 1);
  EXPECT_EQ(places->in_flight(), 0);
}

// Every thread is joined: the group's destructor waits for work still
// running, and finished threads are joined as new ones start.
TEST(CallThreadsTest, JoinsEveryThread) {
  std::atomic<int> done{0};
  {
    CallThreads threads;
    for (int i = 0; i < 20; ++i) {
      threads.Run([&done] {
        absl::SleepFor(absl::Milliseconds(5));
        done.fetch_add(1);
      });
    }
    EXPECT_LE(threads.size(), 20u);
  }
  EXPECT_EQ(done.load(), 20) << "the destructor returned before the work ended";
  CallThreads threads;
  threads.Run([] {});
  absl::SleepFor(absl::Milliseconds(50));
  threads.Run([] {});
  EXPECT_LE(threads.size(), 1u + 1u);
  absl::SleepFor(absl::Milliseconds(50));
  threads.Run([] {});
  EXPECT_LE(threads.size(), 2u) << "finished threads are reaped as new ones start";
}

}  // namespace
}  // namespace imgsel::plugin
