#include "registry/cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "oci/clock.h"
#include "oci/digest.h"

namespace imgsel::registry {
namespace {

constexpr char kScope[] = "r.io/team/app";

class CacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/imgsel-cache-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<DiskCache> Open(int64_t max_bytes) {
    auto cache = DiskCache::Open({dir_, max_bytes});
    EXPECT_TRUE(cache.ok()) << cache.status();
    return std::move(*cache);
  }
  // The one file under blobs/ that holds `digest`.
  std::string BlobFile(const std::string& digest) {
    std::string found;
    for (const auto& e : std::filesystem::directory_iterator(dir_ + "/blobs")) {
      if (absl::EndsWith(e.path().string(), digest.substr(7))) found = e.path().string();
    }
    EXPECT_FALSE(found.empty()) << digest;
    return found;
  }
  // Sets a file's mtime to `seconds` after the epoch: the LRU order, made explicit.
  void Age(const std::string& path, long seconds) {
    struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  }
  std::string dir_;
};

TEST_F(CacheTest, BlobsSurviveReopen) {
  std::string bytes = "{\"schemaVersion\":2}";
  std::string digest = Sha256Digest(bytes);
  {
    auto cache = Open(1 << 20);
    EXPECT_FALSE(cache->GetBlob(kScope, digest).has_value());
    ASSERT_TRUE(cache->PutBlob(kScope, digest, bytes).ok());
  }
  auto again = Open(1 << 20);
  auto got = again->GetBlob(kScope, digest);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, bytes);
}

// Bytes hashed once (VerifyContent) go in on that proof, and only the
// bytes the proof is for.
TEST_F(CacheTest, VerifiedBlobsGoInWithoutAnotherHashOnlyForTheirBytes) {
  auto cache = Open(1 << 20);
  auto verified = VerifyContent("layer", Sha256Digest("layer"));
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(cache->PutBlob(kScope, *verified, "other bytes").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(cache->GetBlob(kScope, verified->digest()).has_value());
  ASSERT_TRUE(cache->PutBlob(kScope, *verified, "layer").ok());
  EXPECT_EQ(cache->GetBlob(kScope, verified->digest()), "layer");
  const VerifiedDigest hashed = HashContent("config");
  ASSERT_TRUE(cache->PutBlob(kScope, hashed, "config").ok());
  EXPECT_EQ(cache->GetBlob(kScope, Sha256Digest("config")), "config");
}

TEST_F(CacheTest, RefusesWrongBytesAndDropsCorruptFiles) {
  auto cache = Open(1 << 20);
  std::string digest = Sha256Digest("good");
  EXPECT_EQ(cache->PutBlob(kScope, digest, "evil").code(), absl::StatusCode::kDataLoss);
  ASSERT_TRUE(cache->PutBlob(kScope, digest, "good").ok());
  const std::string file = BlobFile(digest);
  std::ofstream(file, std::ios::trunc) << "flipped";
  EXPECT_FALSE(cache->GetBlob(kScope, digest).has_value());
  EXPECT_FALSE(std::filesystem::exists(file));  // removed, refetch next time
  EXPECT_FALSE(cache->GetBlob(kScope, "sha256:nothex").has_value());
}

TEST_F(CacheTest, EvictsLeastRecentlyUsed) {
  auto cache = Open(1000);
  std::string a(400, 'a'), b(400, 'b'), c(400, 'c');
  ASSERT_TRUE(cache->PutBlob(kScope, Sha256Digest(a), a).ok());
  ASSERT_TRUE(cache->PutBlob(kScope, Sha256Digest(b), b).ok());
  Age(BlobFile(Sha256Digest(a)), 1000);
  Age(BlobFile(Sha256Digest(b)), 2000);
  // Reading `a` makes it the most recently used.
  ASSERT_TRUE(cache->GetBlob(kScope, Sha256Digest(a)).has_value());
  ASSERT_TRUE(cache->PutBlob(kScope, Sha256Digest(c), c).ok());  // 1200 > 1000: evict
  EXPECT_TRUE(cache->GetBlob(kScope, Sha256Digest(a)).has_value());
  EXPECT_FALSE(cache->GetBlob(kScope, Sha256Digest(b)).has_value());
  EXPECT_TRUE(cache->GetBlob(kScope, Sha256Digest(c)).has_value());
  EXPECT_LE(cache->ScanBytes(), 1000);
}

TEST_F(CacheTest, RecordsExpireAndNegativeAnswersAreRecords) {
  auto cache = Open(1 << 20);
  ASSERT_TRUE(cache->PutRecord("referrers r.io/a@sha256:x", "{\"manifests\":[]}").ok());
  auto fresh = cache->GetRecord("referrers r.io/a@sha256:x", absl::Minutes(10));
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(*fresh, "{\"manifests\":[]}");
  EXPECT_FALSE(cache->GetRecord("referrers r.io/a@sha256:x", absl::ZeroDuration()).has_value());
  EXPECT_FALSE(cache->GetRecord("another key", absl::Minutes(10)).has_value());
  EXPECT_FALSE(cache->PutRecord("two\nlines", "x").ok());
}

// A record is not content-addressed, so a byte changed on disk would still
// parse as a listing (another artifact's digest, a later time written): the
// digest written with it catches a change anywhere, and the file goes.
TEST_F(CacheTest, RecordsWithChangedBytesAreDroppedNotUsed) {
  const std::string key = "referrers r.io/a@sha256:x";
  const std::string listing = "{\"manifests\":[{\"digest\":\"sha256:aaaa\"}]}";
  const std::string file = dir_ + "/records/" + Sha256Digest(key).substr(7);
  // Each change is a byte flipped at, or the file cut to, a place in the
  // stored record (the digest line, then the time, the key, the bytes).
  enum class Change { kFlip, kCut, kDropDigestLine };
  struct Case {
    const char* what;
    Change change;
    std::function<size_t(const std::string&)> at;
  };
  const Case cases[] = {
      {"a byte of the listing", Change::kFlip, [](const std::string& s) { return s.rfind('a'); }},
      {"the time written", Change::kFlip, [](const std::string& s) { return s.find('\n') + 1; }},
      {"cut short", Change::kCut, [](const std::string& s) { return s.size() - 3; }},
      {"the digest line", Change::kFlip, [](const std::string&) { return size_t{10}; }},
      {"no digest line (an earlier format)", Change::kDropDigestLine,
       [](const std::string& s) { return s.find('\n') + 1; }},
  };
  auto cache = Open(1 << 20);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ASSERT_TRUE(cache->PutRecord(key, listing).ok());
    ASSERT_EQ(cache->GetRecord(key, absl::Minutes(10)), listing);
    std::ifstream in(file);
    std::string stored((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = c.at(stored);
    ASSERT_LT(at, stored.size());
    switch (c.change) {
      case Change::kFlip:
        stored.at(at) = static_cast<char>(stored.at(at) ^ 1);
        break;
      case Change::kCut:
        stored.resize(at);
        break;
      case Change::kDropDigestLine:
        stored.erase(0, at);
        break;
    }
    std::ofstream(file, std::ios::trunc) << stored;
    EXPECT_FALSE(cache->GetRecord(key, absl::Minutes(10)).has_value());
    EXPECT_FALSE(std::filesystem::exists(file));  // removed: fetched again next time
  }
}

// Records age by the cache's clock. One stamped later than now (the clock
// went back since it was written) is stale, however far back the clock
// went; a clock that jumps forward makes everything stale: a refetch.
TEST_F(CacheTest, RecordsAgeByTheClockAndAJumpBackMakesThemStale) {
  FakeClock clock;
  const absl::Time written = clock.Now();
  auto cache = DiskCache::Open({.dir = dir_, .max_bytes = 1 << 20, .clock = &clock});
  ASSERT_TRUE(cache.ok()) << cache.status();
  ASSERT_TRUE((*cache)->PutRecord("referrers r.io/a@sha256:x", "[]").ok());
  const struct {
    absl::Duration at;  // from `written`
    bool fresh;
  } cases[] = {
      {absl::ZeroDuration(), true}, {absl::Minutes(9), true},   {absl::Minutes(10), false},
      {absl::Hours(24), false},     {-absl::Seconds(1), false}, {-absl::Hours(24 * 365), false},
  };
  for (const auto& c : cases) {
    clock.Set(written + c.at);
    EXPECT_EQ((*cache)->GetRecord("referrers r.io/a@sha256:x", absl::Minutes(10)).has_value(),
              c.fresh)
        << c.at;
  }
  // Written again after the jump back, it is fresh from then on.
  clock.Set(written - absl::Hours(1));
  ASSERT_TRUE((*cache)->PutRecord("referrers r.io/a@sha256:x", "[]").ok());
  EXPECT_TRUE((*cache)->GetRecord("referrers r.io/a@sha256:x", absl::Minutes(10)).has_value());
}

// Bytes one registry served never answer for another registry or
// repository, though the digest is the same.
TEST_F(CacheTest, BlobsAreFoundOnlyUnderTheScopeThatStoredThem) {
  auto cache = Open(1 << 20);
  std::string bytes = "{\"schemaVersion\":2}";
  std::string digest = Sha256Digest(bytes);
  ASSERT_TRUE(cache->PutBlob("attacker.example/x", digest, bytes).ok());
  const char* others[] = {"victim.example/doesnotexist", "victim.example/x", "attacker.example/y",
                          "attacker.example:5000/x"};
  for (const char* scope : others) {
    EXPECT_FALSE(cache->GetBlob(scope, digest).has_value()) << scope;
  }
  EXPECT_TRUE(cache->GetBlob("attacker.example/x", digest).has_value());
}

// What could not be read back is not written: the read limit is the write limit.
TEST_F(CacheTest, NothingLargerThanAReadAcceptsIsWritten) {
  auto cache = Open(int64_t{256} << 20);
  std::string big(kMaxCacheFileBytes + 1, 'x');
  EXPECT_EQ(cache->PutBlob(kScope, Sha256Digest("any"), big).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(cache->PutRecord("referrers big", big).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(cache->ScanBytes(), 0);
  std::string fits(kMaxCacheFileBytes - 160, 'y');
  ASSERT_TRUE(cache->PutRecord("referrers fits", fits).ok());
  auto back = cache->GetRecord("referrers fits", absl::Minutes(1));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->size(), fits.size());
}

TEST_F(CacheTest, OpenErrorsNameThePath) {
  auto bad = DiskCache::Open({"/proc/imgsel-cannot-exist", 100});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(std::string(bad.status().message()).find("/proc/imgsel-cannot-exist"),
            std::string::npos);
  EXPECT_FALSE(DiskCache::Open({dir_, 0}).ok());
}

}  // namespace
}  // namespace imgsel::registry
