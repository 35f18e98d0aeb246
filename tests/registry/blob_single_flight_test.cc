// One GET per blob in flight (RegistryClient::FetchBlob's single flight,
// client.h): callers asking for a blob another caller is fetching wait for
// its verified bytes; a failure goes to those waiters only; one of the first
// caller's own making (a smaller limit, an earlier deadline) is not shared.
// Against an in-process registry that holds the blob's answer until the
// waiters the case needs are waiting (every hold is bounded), and without a
// disk cache, so no second GET is saved by anything but the flight.
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "registry/client.h"
#include "tests/registry/fake_registry.h"
#include "tests/registry/fake_server.h"
#include "tests/registry/test_images.h"

namespace imgsel::registry {
namespace {

using testing::Blob;
using testing::FakeRegistry;
using testing::FakeRequest;
using testing::FakeResponse;

// Every hold of an answer ends by this, whatever the client does.
constexpr absl::Duration kMaxHold = absl::Seconds(10);

class BlobSingleFlightTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = {"application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml", "version: v1alpha1\n"};
    reg_.AddBlob(spec_);
    auto ref = ParseReference(reg_.host() + "/team/app:v1");
    ASSERT_TRUE(ref.ok());
    ref_ = *ref;
    ClientOptions o;
    o.plain_http = true;
    o.use_docker_config = false;
    o.request_timeout = absl::Seconds(20);
    auto c = RegistryClient::Create(o);
    ASSERT_TRUE(c.ok());
    client_ = *std::move(c);
  }

  // Blob GETs are answered (by `answer`, or as stored when it gives
  // nothing) once `ready` has held (later ones at once), or once kMaxHold
  // has passed.
  void HoldBlobs(
      std::function<bool()> ready,
      std::function<std::optional<FakeResponse>()> answer = [] { return std::nullopt; }) {
    auto released = std::make_shared<std::atomic<bool>>(false);
    reg_.set_fault([ready, answer, released](const FakeRequest& r) -> std::optional<FakeResponse> {
      if (!absl::StrContains(r.target, "/blobs/")) return std::nullopt;
      for (absl::Time end = absl::Now() + kMaxHold; !*released && absl::Now() < end;) {
        if (ready()) *released = true;
        absl::SleepFor(absl::Milliseconds(1));
      }
      return answer();
    });
  }
  std::function<bool()> Waiters(int n) {
    return [this, n] { return client_->blob_fetch_waiters() >= n; };
  }
  // `callers` threads fetch the spec's blob at once; their answers in order.
  std::vector<absl::StatusOr<std::string>> FetchFromThreads(int callers) {
    std::vector<absl::StatusOr<std::string>> got(callers);
    std::vector<std::thread> threads;
    for (int i = 0; i < callers; ++i) {
      threads.emplace_back([&, i] { got[i] = client_->FetchBlob(ref_, spec_.digest()); });
    }
    for (std::thread& t : threads) t.join();
    return got;
  }
  std::vector<RegistryClient::PendingRequest> PendingDuringABlobGet();

  FakeRegistry reg_;
  Blob spec_;
  Reference ref_;
  std::unique_ptr<RegistryClient> client_;
};

// What Pending() lists while one blob GET is held at the registry.
std::vector<RegistryClient::PendingRequest> BlobSingleFlightTest::PendingDuringABlobGet() {
  auto arrived = std::make_shared<absl::Notification>();
  auto release = std::make_shared<absl::Notification>();
  reg_.set_fault([arrived, release](const FakeRequest& r) -> std::optional<FakeResponse> {
    if (!absl::StrContains(r.target, "/blobs/")) return std::nullopt;
    if (!arrived->HasBeenNotified()) arrived->Notify();
    release->WaitForNotificationWithTimeout(kMaxHold);
    return std::nullopt;
  });
  absl::StatusOr<std::string> got;
  std::thread fetch([&] { got = client_->FetchBlob(ref_, spec_.digest()); });
  const bool held = arrived->WaitForNotificationWithTimeout(kMaxHold);
  std::vector<RegistryClient::PendingRequest> pending = client_->Pending();
  release->Notify();
  fetch.join();
  EXPECT_TRUE(held) << "the blob GET never reached the registry";
  EXPECT_TRUE(got.ok()) << got.status();
  return pending;
}

// The list of requests under way is kept only while someone asked for it
// (the CLI on a terminal): imgseld's requests do not pay for it.
TEST_F(BlobSingleFlightTest, PendingIsEmptyUntilTracked) {
  EXPECT_THAT(PendingDuringABlobGet(), ::testing::IsEmpty());
}

TEST_F(BlobSingleFlightTest, PendingListsATrackedRequestUnderWayWithoutItsQuery) {
  client_->TrackPending(true);
  std::vector<RegistryClient::PendingRequest> pending = PendingDuringABlobGet();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].what,
            absl::StrCat("GET ", reg_.url(), "/v2/team/app/blobs/", spec_.digest()));
  EXPECT_TRUE(client_->Pending().empty()) << "an answered request stays listed";
}

TEST_F(BlobSingleFlightTest, ConcurrentFetchesOfOneBlobMakeOneGet) {
  constexpr int kCallers = 8;
  HoldBlobs(Waiters(kCallers - 1));
  std::vector<absl::StatusOr<std::string>> got = FetchFromThreads(kCallers);
  for (const auto& bytes : got) {
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(*bytes, spec_.bytes);
  }
  EXPECT_EQ(reg_.Count("/blobs/"), 1);
  EXPECT_EQ(client_->blob_fetch_waiters(), 0);
}

// Bytes that do not hash to the digest: every waiter gets the DataLoss, and
// nothing of it is kept: the next caller asks again.
TEST_F(BlobSingleFlightTest, AFailureGoesToTheWaitersAndIsNotKept) {
  constexpr int kCallers = 4;
  HoldBlobs(Waiters(kCallers - 1), [] { return FakeResponse{200, {}, "not the spec"}; });
  std::vector<absl::StatusOr<std::string>> got = FetchFromThreads(kCallers);
  for (const auto& bytes : got) {
    ASSERT_TRUE(absl::IsDataLoss(bytes.status())) << bytes.status();
    EXPECT_TRUE(absl::StrContains(bytes.status().message(), spec_.digest()));
  }
  EXPECT_EQ(reg_.Count("/blobs/"), 1);

  reg_.set_fault(nullptr);
  auto later = client_->FetchBlob(ref_, spec_.digest());
  ASSERT_TRUE(later.ok()) << later.status();
  EXPECT_EQ(*later, spec_.bytes);
  EXPECT_EQ(reg_.Count("/blobs/"), 2);
}

// The first caller allows fewer bytes than the blob has; a caller waiting
// for it that allows enough is not told "too large": it fetches the blob.
TEST_F(BlobSingleFlightTest, AWaiterWithALargerLimitFetchesItself) {
  HoldBlobs(Waiters(1));
  absl::StatusOr<std::string> small, large;
  std::thread first([&] { small = client_->FetchBlob(ref_, spec_.digest(), 4); });
  for (absl::Time end = absl::Now() + kMaxHold; reg_.Count("/blobs/") == 0 && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(reg_.Count("/blobs/"), 1);
  std::thread second([&] { large = client_->FetchBlob(ref_, spec_.digest()); });
  first.join();
  second.join();
  EXPECT_TRUE(absl::IsResourceExhausted(small.status())) << small.status();
  ASSERT_TRUE(large.ok()) << large.status();
  EXPECT_EQ(*large, spec_.bytes);
  EXPECT_EQ(reg_.Count("/blobs/"), 2);
}

// A waiter waits until its own deadline, not the first caller's.
TEST_F(BlobSingleFlightTest, AWaiterGivesUpAtItsOwnDeadline) {
  absl::Notification waiter_done;
  HoldBlobs([&] { return waiter_done.HasBeenNotified(); });
  absl::StatusOr<std::string> first_got, waiter_got;
  std::thread first([&] { first_got = client_->FetchBlob(ref_, spec_.digest()); });
  for (absl::Time end = absl::Now() + kMaxHold; reg_.Count("/blobs/") == 0 && absl::Now() < end;) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(reg_.Count("/blobs/"), 1);
  waiter_got =
      client_->FetchBlob(ref_, spec_.digest(), 0, nullptr, absl::Now() + absl::Milliseconds(100));
  waiter_done.Notify();
  first.join();
  EXPECT_TRUE(absl::IsDeadlineExceeded(waiter_got.status())) << waiter_got.status();
  EXPECT_TRUE(absl::StrContains(waiter_got.status().message(), "waiting for another request"))
      << waiter_got.status();
  ASSERT_TRUE(first_got.ok()) << first_got.status();
  EXPECT_EQ(reg_.Count("/blobs/"), 1);
}

}  // namespace
}  // namespace imgsel::registry
