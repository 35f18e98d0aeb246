// The spec cache nodes parse through: one parse per layer however many pulls
// ask at once, failures remembered, and bounded memory.
#include "selector/spec_cache.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace imgsel {
namespace {

constexpr char kSpec[] = R"(version: v1alpha1
compatibilities:
- rules:
  - name: kernel
    matchFeatures:
    - feature: kernel.version
      matchExpressions:
        major: {op: Ge, value: ["5"]}
)";

// A parser that counts its calls and gives kSpec's spec, or `fail`, whatever
// the bytes (which then only set what an outcome is charged).
struct CountingParser {
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  absl::Status fail = absl::OkStatus();

  SpecCache::Parser Fn() const {
    return [calls = calls, fail = fail](absl::string_view, SpecFormat, absl::string_view source,
                                        bool) -> absl::StatusOr<CompatSpec> {
      ++*calls;
      if (!fail.ok()) return fail;
      return ParseCompatSpec(kSpec, SpecFormat::kNfd, source);
    };
  }
};

// Counts callers that wait for another's parse, and lets a test wait for them.
class Waiters {
 public:
  void Arrive() {
    absl::MutexLock lock(&mu_);
    ++count_;
  }
  // True when `n` callers have arrived within 10 seconds.
  bool AwaitCount(int n) {
    absl::MutexLock lock(&mu_);
    auto reached = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return count_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&reached), absl::Seconds(10));
  }

 private:
  absl::Mutex mu_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
};

// Eight pulls of one image at once: the first parses, the seven others wait
// for it (the parse is held until all seven are waiting), and all get the
// very same outcome.
TEST(SpecCache, ConcurrentCallersForOneLayerShareOneParse) {
  constexpr int kCallers = 8;
  absl::Notification parsing;
  absl::Notification release;
  std::atomic<int> calls = 0;
  Waiters waiters;
  SpecCache cache(
      [&](absl::string_view bytes, SpecFormat format, absl::string_view source, bool json) {
        if (calls++ == 0) parsing.Notify();
        release.WaitForNotification();
        return ParseCompatSpec(bytes, format, source, json);
      },
      [&waiters] { waiters.Arrive(); });

  std::vector<SpecCache::Outcome> outcomes(kCallers);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { outcomes[0] = cache.Get("sha256:a", SpecFormat::kNfd, kSpec); });
  parsing.WaitForNotification();
  for (int i = 1; i < kCallers; ++i) {
    threads.emplace_back([&, i] { outcomes[i] = cache.Get("sha256:a", SpecFormat::kNfd, kSpec); });
  }
  const bool all_waiting = waiters.AwaitCount(kCallers - 1);
  release.Notify();
  for (std::thread& t : threads) t.join();

  ASSERT_TRUE(all_waiting) << "callers did not wait for the parse under way";
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(cache.parses(), 1);
  for (const SpecCache::Outcome& o : outcomes) {
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(o, outcomes[0]);
    EXPECT_TRUE(o->ok());
  }
}

TEST(SpecCache, AFailureIsRememberedLikeASuccess) {
  CountingParser parser;
  parser.fail = absl::InvalidArgumentError("sha256:bad:3:1: error: over budget");
  SpecCache cache(parser.Fn());
  for (int pull = 0; pull < 5; ++pull) {
    SpecCache::Outcome o = cache.Get("sha256:bad", SpecFormat::kNfd, "bytes");
    ASSERT_FALSE(o->ok());
    EXPECT_EQ(o->status().message(), "sha256:bad:3:1: error: over budget");
  }
  EXPECT_EQ(*parser.calls, 1);
  EXPECT_EQ(cache.parses(), 1);
}

TEST(SpecCache, ErrorsNameTheLayer) {
  SpecCache cache;
  SpecCache::Outcome o = cache.Get("sha256:0123", SpecFormat::kNfd, "version: v2\n");
  ASSERT_FALSE(o->ok());
  EXPECT_NE(o->status().message().find("sha256:0123:1:10: error: unsupported version"),
            absl::string_view::npos)
      << o->status();
}

TEST(SpecCache, EachLayerAndFormatIsItsOwnOutcome) {
  CountingParser parser;
  SpecCache cache(parser.Fn());
  cache.Get("sha256:a", SpecFormat::kNfd, kSpec);
  cache.Get("sha256:b", SpecFormat::kNfd, kSpec);
  cache.Get("sha256:a", SpecFormat::kKeyValueGroups, kSpec);
  cache.Get("sha256:a", SpecFormat::kNfd, kSpec);
  EXPECT_EQ(*parser.calls, 3);
}

TEST(SpecCache, PastItsEntryLimitItForgetsFinishedOutcomes) {
  CountingParser parser;
  SpecCache cache(parser.Fn());
  for (size_t i = 0; i < SpecCache::kMaxEntries; ++i) {
    cache.Get(absl::StrCat("sha256:", i), SpecFormat::kNfd, kSpec);
  }
  cache.Get("sha256:0", SpecFormat::kNfd, kSpec);
  EXPECT_EQ(*parser.calls, static_cast<int>(SpecCache::kMaxEntries)) << "all still remembered";
  cache.Get("sha256:one-more", SpecFormat::kNfd, kSpec);
  cache.Get("sha256:0", SpecFormat::kNfd, kSpec);
  EXPECT_EQ(*parser.calls, static_cast<int>(SpecCache::kMaxEntries) + 2) << "dropped when full";
}

TEST(SpecCache, PastItsFootprintItForgetsFinishedOutcomes) {
  CountingParser parser;
  SpecCache cache(parser.Fn());
  cache.Get("sha256:small", SpecFormat::kNfd, kSpec);
  // A layer whose charge alone is the whole footprint (16 bytes a byte).
  const std::string big(SpecCache::kMaxFootprint / 16, 'x');
  cache.Get("sha256:big", SpecFormat::kNfd, big);
  cache.Get("sha256:big", SpecFormat::kNfd, big);
  EXPECT_EQ(*parser.calls, 2) << "the outcome that filled the cache is kept";
  cache.Get("sha256:small", SpecFormat::kNfd, kSpec);
  EXPECT_EQ(*parser.calls, 3) << "the others were dropped";
}

}  // namespace
}  // namespace imgsel
