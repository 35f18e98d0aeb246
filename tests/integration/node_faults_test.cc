// Faults of the node around imgseld, each made with the real thing: imgseld
// SIGKILLed at each step of a pull, containerd killed and started again
// (also before imgseld, and a new containerd on the old socket), the
// registry cache read-only, full, corrupted and shared by two imgselds, and
// the config reloaded in a storm or from a half-written file.
//
// Each test says what kubelet (this test, over the CRI socket) sees when the
// fault strikes, what containerd holds afterwards, and prints the time from
// the fault to the first correct answer ("fault ...: N ms"), the figures of
// docs/RELIABILITY.md's "Faults: the node". A correct answer is the entry
// imgsel chooses for the x86-64-v3 host profile (kV3), under the tag kubelet
// asked for, with every blob the record names in containerd's content store.
//
// Requests are held where a real component would be slow: a proxy in front
// of the registry (RoundTripProxy::Hold) holds imgseld's resolve or
// containerd's layer fetch. The one step nothing outside can hold, between
// containerd's answer and the image record, uses imgseld's test hook
// --inject-fault=record-hold (plugin/image_records.h).
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cri/runtime/v1/api.grpc.pb.h"
#include "oci/digest.h"
#include "plugin/image_records.h"
#include "plugin/upstream.h"
#include "tests/integration/harness.h"
#include "tests/integration/round_trip_proxy.h"
#include "tests/integration/world.h"

#ifndef IMGSELD_BINARY
#error "IMGSELD_BINARY must name the imgseld binary"
#endif

namespace imgsel::integration {
namespace {

namespace fs = std::filesystem;

// What a pull through the CRI socket came back with.
struct Answer {
  grpc::Status status;
  std::string image_ref;
};

Answer PullWithin(const std::string& cri_socket, const std::string& image, absl::Duration timeout) {
  auto cri = Cri(cri_socket);
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  runtime::v1::PullImageResponse resp;
  Answer a;
  a.status = cri->PullImage(&ctx, req, &resp);
  a.image_ref = resp.image_ref();
  return a;
}

std::string Describe(const Answer& a) {
  if (a.status.ok()) return absl::StrCat("OK ", a.image_ref);
  return absl::StrCat("code ", a.status.error_code(), ": ", a.status.error_message());
}

// Pulls `image` every 100 ms (as a kubelet retrying, only faster) until the
// answer is kV3 or `timeout` passes; returns the first correct answer's
// time, or nullopt (with the last answer in *last).
std::optional<absl::Time> RetryUntilRight(const std::string& cri_socket, const std::string& image,
                                          absl::Duration timeout, Answer* last) {
  const absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    *last = PullWithin(cri_socket, image, std::max(absl::Seconds(1), give_up - absl::Now()));
    if (last->status.ok() && last->image_ref == ConfigDigest(kV3)) return absl::Now();
    absl::SleepFor(absl::Milliseconds(100));
  }
  return std::nullopt;
}

void PrintFigure(const std::string& fault, absl::Duration took) {
  std::cout << "fault " << fault << ": " << absl::ToInt64Milliseconds(took)
            << " ms to a correct answer" << std::endl;
}

// Every "sha256:<hex>" in `text`, in order.
std::vector<std::string> DigestsIn(const std::string& text) {
  std::vector<std::string> out;
  for (size_t at = text.find("sha256:"); at != std::string::npos;
       at = text.find("sha256:", at + 1)) {
    const std::string d = text.substr(at, 71);
    if (ValidateDigest(d).ok()) out.push_back(d);
  }
  return out;
}

std::string LayerOf(const std::string& manifest_digest) {
  const std::string m = Blob(manifest_digest);
  const std::vector<std::string> digests = DigestsIn(m.substr(m.find("\"layers\"")));
  return digests.empty() ? "" : digests.front();
}

std::string ContentPath(const Containerd& c, const std::string& digest) {
  return absl::StrCat(c.root(), "/io.containerd.content.v1.content/blobs/sha256/",
                      digest.substr(7));
}

// "" when containerd's record `name` is absent or whole: its target
// manifest and every blob that manifest names are in the content store,
// byte for byte. Otherwise what is wrong: a record left pointing at content
// that is not there is what a crash must never leave.
std::string RecordProblem(const Containerd& c, const std::string& name) {
  plugin::ContainerdImageRecords records(plugin::UnixChannel(c.socket()), "k8s.io");
  auto record = records.Get(name, absl::Now() + absl::Seconds(5));
  if (absl::IsNotFound(record.status())) return "";
  if (!record.ok()) return std::string(record.status().message());
  std::vector<std::string> needed = {record->digest};
  const std::string manifest = ReadFile(ContentPath(c, record->digest));
  for (const std::string& d : DigestsIn(manifest)) needed.push_back(d);
  for (const std::string& d : needed) {
    const std::string bytes = ReadFile(ContentPath(c, d));
    if (!VerifyDigest(bytes, d).ok()) {
      return absl::StrCat(name, " -> ", record->digest, ": ", d, " is not in the content store");
    }
  }
  return "";
}

// kubelet's view after the retry: the tag is kV3, whole.
void ExpectRightImage(const Daemon& d, const Containerd& c, const std::string& image) {
  auto cri = Cri(d.cri_socket);
  auto status = Status(*cri, image);
  ASSERT_TRUE(status.has_value()) << image << ReadFile(d.log);
  EXPECT_EQ(status->id(), ConfigDigest(kV3));
  plugin::ContainerdImageRecords records(plugin::UnixChannel(c.socket()), "k8s.io");
  auto record = records.Get(image, absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(record.ok()) << record.status();
  EXPECT_EQ(record->digest, kV3);
  EXPECT_EQ(RecordProblem(c, image), "");
}

// The same imgseld again (same config, sockets and host profile), as
// systemd restarts it; returns once both sockets accept.
absl::Status Respawn(Daemon& d, const std::vector<std::string>& extra_flags = {}) {
  std::vector<std::string> argv = {IMGSELD_BINARY, "--config", d.config, "--host-profile",
                                   absl::StrCat(Examples(), "/hosts/amd64-v3.json")};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  auto p = Process::Spawn(argv, d.log);
  if (!p.ok()) return p.status();
  d.process = *std::move(p);
  if (!WaitForSocket(d.cri_socket, absl::Seconds(15)) ||
      !WaitForSocket(d.api_socket, absl::Seconds(15))) {
    return absl::UnavailableError(absl::StrCat("imgseld did not come back: ", ReadFile(d.log)));
  }
  return absl::OkStatus();
}

// A proxy in front of the world's registry and a certs.d sending there.
struct ProxiedRegistry {
  explicit ProxiedRegistry(const std::string& name) {
    const std::string& host = world->registry->host();
    std::string why;
    proxy = RoundTripProxy::Start(std::stoi(host.substr(host.rfind(':') + 1)), absl::ZeroDuration(),
                                  &why);
    if (proxy == nullptr) return;
    certs = absl::StrCat(world->dir, "/certs-", name, ".d");
    ok = WriteHostsToml(certs, world->registry->host(), absl::StrCat("127.0.0.1:", proxy->port()))
             .ok();
  }
  int Count(const std::string& part) const {
    int n = 0;
    for (const auto& r : proxy->requests()) n += absl::StrContains(r.line, part) ? 1 : 0;
    return n;
  }
  std::unique_ptr<RoundTripProxy> proxy;
  std::string certs;
  bool ok = false;
};

// A containerd of the test's own: a fresh content store, so its pulls do
// fetch layers (the world's containerd has them all).
absl::StatusOr<std::unique_ptr<Containerd>> OwnContainerd(const std::string& name,
                                                          const std::string& certs,
                                                          const std::string& socket = "") {
  const std::string dir = absl::StrCat(world->dir, "/ctd-", name);
  fs::create_directories(dir);
  return Containerd::Start(dir, certs, "", socket);
}

// ---------------------------------------------------------------------------
// imgseld SIGKILLed in the middle of a pull, at each step.

enum class Step { kResolving, kContainerdPulling, kBeforeRecord };

struct KillCase {
  const char* name;
  Step step;
};

void KillAtStepThenRetry(const KillCase& c) {
  ProxiedRegistry reg(c.name);
  ASSERT_TRUE(reg.ok);
  auto ctd = OwnContainerd(c.name, reg.certs);
  ASSERT_TRUE(ctd.ok()) << ctd.status();
  const std::string image = Ref(c.name);
  std::vector<std::string> flags;
  if (c.step == Step::kResolving) reg.proxy->Hold(absl::StrCat("/", c.name, "/manifests/v1"));
  if (c.step == Step::kContainerdPulling) reg.proxy->Hold(absl::StrCat("/blobs/", LayerOf(kV3)));
  if (c.step == Step::kBeforeRecord) flags.push_back("--inject-fault=record-hold");
  auto d = StartImgseld(absl::StrCat("kill-", c.name), "select_timeout = \"10s\"\n", flags,
                        reg.certs, /*wait=*/true, (*ctd)->socket());
  ASSERT_TRUE(d.ok()) << d.status();

  Answer during;
  std::thread kubelet([&] { during = PullWithin(d->cri_socket, image, absl::Seconds(30)); });
  const bool reached = c.step == Step::kBeforeRecord
                           ? WaitForFileContaining(d->log, "holding the record", absl::Seconds(20))
                           : reg.proxy->AwaitHeld(absl::Seconds(20));
  if (!reached) {
    reg.proxy->Release();
    kubelet.join();
    FAIL() << "the pull never reached the step: " << Describe(during) << ReadFile(d->log);
  }
  const int killed = d->process->Signal(SIGKILL, absl::Seconds(5));
  const absl::Time fault = absl::Now();
  kubelet.join();
  ASSERT_TRUE(WIFSIGNALED(killed)) << killed;
  // kubelet: the call failed (the connection went with imgseld), it retries.
  EXPECT_FALSE(during.status.ok()) << Describe(during);
  std::cout << c.name << ": kubelet saw " << Describe(during) << std::endl;
  // The tag is recorded by imgseld alone, after containerd's pull: a kill
  // before that leaves no record of it, never one half written. At the
  // last step containerd's own record of the pinned pull is whole.
  plugin::ContainerdImageRecords records(plugin::UnixChannel((*ctd)->socket()), "k8s.io");
  EXPECT_TRUE(absl::IsNotFound(records.Get(image, absl::Now() + absl::Seconds(5)).status()));
  const std::string pinned = absl::StrCat(world->registry->host(), "/", c.name, "@", kV3);
  if (c.step == Step::kBeforeRecord) {
    EXPECT_TRUE(records.Get(pinned, absl::Now() + absl::Seconds(5)).ok()) << pinned;
  }
  EXPECT_EQ(RecordProblem(**ctd, pinned), "");

  reg.proxy->Release();
  ASSERT_TRUE(Respawn(*d).ok()) << ReadFile(d->log);
  Answer last;
  const std::optional<absl::Time> right =
      RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
  ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
  PrintFigure(absl::StrCat("imgseld SIGKILLed ", c.name), *right - fault);
  ExpectRightImage(*d, **ctd, image);
  const std::string line = PullLine(ReadFile(d->log), image);
  EXPECT_TRUE(absl::StrContains(line, "\"outcome\":\"selected\"")) << line;
}

TEST(NodeFaults, ImgseldKilledWhileResolving) {
  REQUIRE_WORLD();
  KillAtStepThenRetry({"resolving", Step::kResolving});
}

TEST(NodeFaults, ImgseldKilledWhileContainerdPullsTheChosenDigest) {
  REQUIRE_WORLD();
  KillAtStepThenRetry({"containerd-pulling", Step::kContainerdPulling});
}

TEST(NodeFaults, ImgseldKilledBetweenThePullAndTheRecord) {
  REQUIRE_WORLD();
  KillAtStepThenRetry({"before-record", Step::kBeforeRecord});
}

// ---------------------------------------------------------------------------
// containerd.

// containerd killed while it fetches the chosen entry's layer, then started
// again on the same root and socket (as systemd does).
TEST(NodeFaults, ContainerdRestartedInTheMiddleOfAPull) {
  REQUIRE_WORLD();
  ProxiedRegistry reg("ctd-restart");
  ASSERT_TRUE(reg.ok);
  auto ctd = OwnContainerd("restart", reg.certs);
  ASSERT_TRUE(ctd.ok()) << ctd.status();
  reg.proxy->Hold(absl::StrCat("/blobs/", LayerOf(kV3)));
  auto d = StartImgseld("ctd-restart", "", {}, reg.certs, true, (*ctd)->socket());
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string image = Ref("ctd-restart");
  Answer during;
  std::thread kubelet([&] { during = PullWithin(d->cri_socket, image, absl::Seconds(30)); });
  if (!reg.proxy->AwaitHeld(absl::Seconds(20))) {
    reg.proxy->Release();
    kubelet.join();
    FAIL() << "containerd never fetched the layer: " << Describe(during) << ReadFile(d->log);
  }
  ASSERT_TRUE((*ctd)->Stop(SIGKILL).ok());
  const absl::Time fault = absl::Now();
  kubelet.join();
  std::cout << "containerd restarted: kubelet saw " << Describe(during) << std::endl;
  // imgseld's pull by digest failed, and so did its retry as sent: there
  // was no containerd to pull anything.
  EXPECT_FALSE(during.status.ok()) << Describe(during);
  reg.proxy->Release();
  ASSERT_TRUE((*ctd)->Restart().ok());
  const absl::Time back = absl::Now();
  EXPECT_EQ(RecordProblem(**ctd, image), "");
  Answer last;
  auto right = RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
  ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
  PrintFigure("containerd restarted mid-pull (from the kill)", *right - fault);
  PrintFigure("containerd restarted mid-pull (from containerd answering again)", *right - back);
  ExpectRightImage(*d, **ctd, image);
  EXPECT_TRUE(d->process->Running());
}

// imgseld started while containerd is not there: it comes up (its sockets
// accept, pulls fail as containerd's absence would make them fail), and
// pulls go through once containerd is.
TEST(NodeFaults, ContainerdDownWhenImgseldStarts) {
  REQUIRE_WORLD();
  const std::string dir = world->dir + "/ctd-late";
  fs::create_directories(dir);
  const std::string socket = dir + "/containerd.sock";
  auto d = StartImgseld("ctd-late", "", {}, world->certs, true, socket);
  ASSERT_TRUE(d.ok()) << d.status();  // up without containerd
  const std::string image = Ref("ctd-late");
  const Answer down = PullWithin(d->cri_socket, image, absl::Seconds(10));
  std::cout << "containerd down at start: kubelet saw " << Describe(down) << std::endl;
  EXPECT_EQ(down.status.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(down);
  EXPECT_TRUE(absl::StrContains(PullLine(ReadFile(d->log), image), "\"reason\":\"digest_pull\""))
      << ReadFile(d->log);
  // Down for a while, so imgseld's channel is in its reconnect backoff.
  absl::SleepFor(absl::Seconds(3));
  auto ctd = Containerd::Start(dir, world->certs);
  ASSERT_TRUE(ctd.ok()) << ctd.status();
  const absl::Time back = absl::Now();
  Answer last;
  auto right = RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
  ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
  PrintFigure("containerd down when imgseld starts (from containerd answering)", *right - back);
  ExpectRightImage(*d, **ctd, image);
}

// containerd's socket replaced: the containerd behind it stops and another
// one, with a root of its own, listens on the same path. imgseld's
// connection goes to the new one, which pulls and records for itself.
TEST(NodeFaults, ContainerdSocketReplacedByANewOne) {
  REQUIRE_WORLD();
  auto first = OwnContainerd("first", world->certs);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string socket = (*first)->socket();
  auto d = StartImgseld("ctd-replaced", "", {}, world->certs, true, socket);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string image = Ref("ctd-replaced");
  Answer before = PullWithin(d->cri_socket, image, absl::Seconds(30));
  ASSERT_TRUE(before.status.ok()) << Describe(before);
  ASSERT_TRUE((*first)->Stop(SIGTERM).ok());
  const absl::Time fault = absl::Now();
  unlink(socket.c_str());
  auto second = OwnContainerd("second", world->certs, socket);
  ASSERT_TRUE(second.ok()) << second.status();
  const absl::Time back = absl::Now();
  Answer last;
  auto right = RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
  ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
  PrintFigure("containerd socket replaced (from the new containerd answering)", *right - back);
  PrintFigure("containerd socket replaced (from the old one stopping)", *right - fault);
  ExpectRightImage(*d, **second, image);
}

// ---------------------------------------------------------------------------
// The registry cache ([compat] cache_dir).

// A file system mounted for a test, unmounted (lazily) when it ends.
struct Mount {
  std::string path;
  bool ok = false;
  Mount(const std::string& source, const std::string& target, const char* type, unsigned long flags,
        const std::string& options)
      : path(target) {
    fs::create_directories(target);
    ok = mount(source.c_str(), target.c_str(), type, flags, options.c_str()) == 0;
    if (!ok) std::cerr << "mount " << target << ": " << strerror(errno) << std::endl;
  }
  ~Mount() {
    if (ok) umount2(path.c_str(), MNT_DETACH);
  }
};

std::string CacheToml(const std::string& dir) {
  return absl::StrCat("[compat]\ncache_dir = \"", dir, "\"\n");
}

// Every file under the cache's blobs/ holds the bytes of the digest its
// name ends with; every record carries the digest of what follows it.
std::string CacheProblem(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir + "/blobs", ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    const std::string digest = "sha256:" + name.substr(name.size() - 64);
    if (!VerifyDigest(ReadFile(e.path().string()), digest).ok()) {
      return absl::StrCat(e.path().string(), " does not hold ", digest);
    }
  }
  for (const auto& e : fs::directory_iterator(dir + "/records", ec)) {
    const std::string text = ReadFile(e.path().string());
    const size_t nl = text.find('\n');
    if (nl == std::string::npos || !VerifyDigest(text.substr(nl + 1), text.substr(0, nl)).ok()) {
      return absl::StrCat(e.path().string(), " is torn");
    }
  }
  for (const auto& e : fs::directory_iterator(dir + "/tmp", ec)) {
    return absl::StrCat(e.path().string(), " left behind");
  }
  return "";
}

int FilesUnder(const std::string& dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

// A cache directory imgseld cannot write: an empty read-only file system
// (it cannot even create blobs/, records/, tmp/), and a cache a pull filled
// before it was remounted read-only. imgseld starts, says why it runs
// without the cache, and every pull gets the right image.
TEST(NodeFaults, CacheDirectoryReadOnly) {
  REQUIRE_WORLD();
  {
    SCOPED_TRACE("empty and read-only");
    const std::string dir = world->dir + "/caches/cache-ro-empty";
    Mount ro("tmpfs", dir, "tmpfs", MS_RDONLY, "size=1m");
    ASSERT_TRUE(ro.ok);
    const absl::Time fault = absl::Now();
    auto d = StartImgseld("cache-ro-empty", CacheToml(dir), {}, world->certs);
    ASSERT_TRUE(d.ok()) << d.status();
    const std::string image = Ref("cache-ro-empty");
    Answer last;
    auto right = RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
    ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
    PrintFigure("cache read-only and empty (from imgseld's start)", *right - fault);
    EXPECT_TRUE(absl::StrContains(ReadFile(d->log), "running without a disk cache"))
        << ReadFile(d->log);
    ExpectRightImage(*d, *world->containerd, image);
  }
  {
    SCOPED_TRACE("filled, then read-only");
    const std::string dir = world->dir + "/caches/cache-ro-full";
    fs::create_directories(dir);
    auto d = StartImgseld("cache-ro-full", CacheToml(dir), {}, world->certs);
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_TRUE(PullWithin(d->cri_socket, Ref("cache-ro-full"), absl::Seconds(30)).status.ok());
    const int files = FilesUnder(dir);
    ASSERT_GT(files, 0);
    Mount bind(dir, dir, nullptr, MS_BIND, "");
    ASSERT_TRUE(bind.ok);
    ASSERT_EQ(mount("none", dir.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr), 0)
        << strerror(errno);
    const absl::Time fault = absl::Now();
    const std::string image = Ref("cache-ro-full2");
    Answer last;
    auto right = RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
    ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
    PrintFigure("cache remounted read-only", *right - fault);
    ExpectRightImage(*d, *world->containerd, image);
    EXPECT_EQ(FilesUnder(dir), files);
    EXPECT_EQ(CacheProblem(dir), "");
    EXPECT_TRUE(d->process->Running());
  }
}

// The cache's file system full (a 256 KiB tmpfs filled by another file):
// every write fails with ENOSPC, the pull is right all the same, and once
// there is room again the cache fills again.
TEST(NodeFaults, CacheDiskFull) {
  REQUIRE_WORLD();
  const std::string dir = world->dir + "/caches/cache-full";
  Mount small("tmpfs", dir, "tmpfs", 0, "size=256k");
  ASSERT_TRUE(small.ok);
  auto d = StartImgseld("cache-full", CacheToml(dir), {}, world->certs);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string filler = dir + "/filler";
  {
    const int fd = open(filler.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    const std::string chunk(4096, 'x');
    while (write(fd, chunk.data(), chunk.size()) > 0) {
    }
    const int err = errno;
    close(fd);
    ASSERT_EQ(err, ENOSPC);
  }
  const absl::Time fault = absl::Now();
  const std::string image = Ref("cache-full");
  Answer last;
  auto right = RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
  ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
  PrintFigure("cache disk full", *right - fault);
  ExpectRightImage(*d, *world->containerd, image);
  EXPECT_EQ(CacheProblem(dir), "");  // nothing torn, no temp file left
  EXPECT_EQ(FilesUnder(dir), 1);     // the filler alone

  fs::remove(filler);
  const std::string after = Ref("cache-full2");
  ASSERT_TRUE(RetryUntilRight(d->cri_socket, after, absl::Seconds(30), &last).has_value())
      << Describe(last);
  EXPECT_GT(FilesUnder(dir), 0) << "the cache is written again once there is room";
  EXPECT_EQ(CacheProblem(dir), "");
}

// Every file of the cache changed in place (a byte flipped in the middle):
// none is used. A restarted imgseld (nothing in memory) finds each one
// wrong by its digest, drops it and fetches it again from the registry.
TEST(NodeFaults, CacheEntryCorrupted) {
  REQUIRE_WORLD();
  ProxiedRegistry reg("cache-corrupt");
  ASSERT_TRUE(reg.ok);
  const std::string dir = world->dir + "/caches/cache-corrupt";
  auto d = StartImgseld("cache-corrupt", CacheToml(dir), {}, reg.certs);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string image = Ref("cache-corrupt");
  const std::string chosen_manifest = absl::StrCat("/manifests/", kV3);
  ASSERT_TRUE(PullWithin(d->cri_socket, image, absl::Seconds(30)).status.ok());
  // Warm: the chosen manifest comes from the cache, not the registry.
  const int cold = reg.Count(chosen_manifest);
  ASSERT_TRUE(PullWithin(d->cri_socket, image, absl::Seconds(30)).status.ok());
  ASSERT_EQ(reg.Count(chosen_manifest), cold) << "the warm pull did not use the cache";

  int changed = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || absl::StartsWith(fs::relative(e.path(), dir).string(), "tmp/")) {
      continue;
    }
    std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
    const auto middle = static_cast<std::streamoff>(e.file_size() / 2);
    f.seekg(middle);
    const char c = static_cast<char>(f.get());
    f.seekp(middle);
    f.put(static_cast<char>(c ^ 0x20));
    ++changed;
  }
  ASSERT_GT(changed, 1);
  ASSERT_NE(d->process->Signal(SIGTERM, absl::Seconds(10)), -1);
  const absl::Time fault = absl::Now();
  ASSERT_TRUE(Respawn(*d).ok());
  Answer last;
  auto right = RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
  ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
  PrintFigure("cache entries corrupted (restart included)", *right - fault);
  EXPECT_GT(reg.Count(chosen_manifest), cold) << "the corrupted manifest was not fetched again";
  ExpectRightImage(*d, *world->containerd, image);
  EXPECT_EQ(CacheProblem(dir), "") << "a corrupted file is still there";
  EXPECT_TRUE(
      absl::StrContains(PullLine(ReadFile(d->log), image), absl::StrCat("\"chosen\":\"", kV3)))
      << ReadFile(d->log);
}

// Two imgselds, one cache directory, pulling the same images at once.
TEST(NodeFaults, TwoImgseldsShareOneCache) {
  REQUIRE_WORLD();
  const std::string dir = world->dir + "/caches/cache-shared";
  auto a = StartImgseld("shared-a", CacheToml(dir), {}, world->certs);
  auto b = StartImgseld("shared-b", CacheToml(dir), {}, world->certs);
  ASSERT_TRUE(a.ok() && b.ok());
  constexpr int kRepos = 4;
  std::vector<std::thread> pulls;
  std::vector<Answer> answers(2 * kRepos);
  const absl::Time start = absl::Now();
  for (int i = 0; i < kRepos; ++i) {
    for (int side = 0; side < 2; ++side) {
      pulls.emplace_back([&, i, side] {
        answers[2 * i + side] = PullWithin(side == 0 ? a->cri_socket : b->cri_socket,
                                           Ref(absl::StrCat("shared", i)), absl::Seconds(60));
      });
    }
  }
  for (std::thread& t : pulls) t.join();
  std::cout << "two imgselds on one cache: " << answers.size() << " pulls in "
            << absl::ToInt64Milliseconds(absl::Now() - start) << " ms" << std::endl;
  for (const Answer& answer : answers) {
    EXPECT_TRUE(answer.status.ok() && answer.image_ref == ConfigDigest(kV3)) << Describe(answer);
  }
  for (int i = 0; i < kRepos; ++i)
    ExpectRightImage(*a, *world->containerd, Ref(absl::StrCat("shared", i)));
  EXPECT_GT(FilesUnder(dir + "/blobs"), 0);
  EXPECT_EQ(CacheProblem(dir), "");
}

// ---------------------------------------------------------------------------
// The config.

// 200 SIGHUPs over 2 s while 16 pulls run: every pull right, imgseld alive
// and still answering.
TEST(NodeFaults, SighupStormWhilePullsRun) {
  REQUIRE_WORLD();
  auto d = StartImgseld("storm", "", {}, world->certs);
  ASSERT_TRUE(d.ok()) << d.status();
  constexpr int kPulls = 16;
  std::atomic<bool> storming{true};
  std::thread storm([&] {
    for (int i = 0; i < 200; ++i) {
      kill(d->process->pid(), SIGHUP);
      absl::SleepFor(absl::Milliseconds(10));
    }
    storming = false;
  });
  const absl::Time start = absl::Now();
  std::vector<Answer> answers(kPulls);
  std::vector<absl::Time> ended(kPulls);
  std::vector<std::thread> pulls;
  for (int i = 0; i < kPulls; ++i) {
    pulls.emplace_back([&, i] {
      answers[i] = PullWithin(d->cri_socket, Ref(absl::StrCat("storm", i % 8)), absl::Seconds(60));
      ended[i] = absl::Now();
    });
  }
  for (std::thread& t : pulls) t.join();
  storm.join();
  absl::Time first = absl::InfiniteFuture();
  for (int i = 0; i < kPulls; ++i) {
    EXPECT_TRUE(answers[i].status.ok() && answers[i].image_ref == ConfigDigest(kV3))
        << i << ": " << Describe(answers[i]);
    first = std::min(first, ended[i]);
  }
  PrintFigure("SIGHUP storm (first of 16 pulls)", first - start);
  std::cout << "SIGHUP storm: all 16 pulls in "
            << absl::ToInt64Milliseconds(*std::max_element(ended.begin(), ended.end()) - start)
            << " ms" << std::endl;
  EXPECT_TRUE(d->process->Running()) << ReadFile(d->log);
  const Answer after = PullWithin(d->cri_socket, Ref("storm0"), absl::Seconds(30));
  EXPECT_TRUE(after.status.ok()) << Describe(after);
  const std::string metrics = Metrics(d->metrics_port);
  EXPECT_TRUE(absl::StrContains(metrics, "imgseld_config_reloads_total{result=\"ok\"}")) << metrics;
  EXPECT_FALSE(absl::StrContains(metrics, "imgseld_config_reloads_total{result=\"error\"} 1"));
}

// The config replaced by a file written half-way (cut inside a value,
// inside a table header, or nothing yet), then SIGHUP: the running config
// stays, the log says why, pulls go on as before.
TEST(NodeFaults, HalfWrittenConfigKeepsTheLastGoodOne) {
  REQUIRE_WORLD();
  auto d = StartImgseld("half-config", "select_timeout = \"3s\"\n", {}, world->certs);
  ASSERT_TRUE(d.ok()) << d.status();
  const std::string good = ReadFile(d->config);
  struct Cut {
    const char* what;
    size_t at;
  };
  const Cut cuts[] = {
      {"inside a value", good.find("/imgsel.sock") + 4},
      {"inside a table header", good.find("[server]") + 4},
      {"nothing written yet", 0},
  };
  int refused = 0;
  for (const Cut& cut : cuts) {
    SCOPED_TRACE(cut.what);
    std::ofstream(d->config, std::ios::trunc) << good.substr(0, cut.at);
    const size_t before = ReadFile(d->log).size();
    kill(d->process->pid(), SIGHUP);
    const absl::Time fault = absl::Now();
    const absl::Time give_up = fault + absl::Seconds(10);
    while (!absl::StrContains(ReadFile(d->log).substr(before), "keeping the running config") &&
           absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    const std::string said = ReadFile(d->log).substr(before);
    ASSERT_TRUE(absl::StrContains(said, "keeping the running config")) << said;
    EXPECT_TRUE(absl::StrContains(said, d->config)) << "the error names the file: " << said;
    ++refused;
    const std::string image = Ref("half-config");
    Answer last;
    auto right = RetryUntilRight(d->cri_socket, image, absl::Seconds(30), &last);
    ASSERT_TRUE(right.has_value()) << Describe(last) << ReadFile(d->log);
    PrintFigure(absl::StrCat("half-written config (", cut.what, ")"), *right - fault);
    ExpectRightImage(*d, *world->containerd, image);
  }
  EXPECT_TRUE(
      absl::StrContains(Metrics(d->metrics_port),
                        absl::StrCat("imgseld_config_reloads_total{result=\"error\"} ", refused)));
  std::ofstream(d->config, std::ios::trunc) << good;
}

}  // namespace
}  // namespace imgsel::integration

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::vector<std::string> repos = {
      "resolving",    "containerd-pulling", "before-record", "ctd-restart",    "ctd-late",
      "ctd-replaced", "cache-ro-empty",     "cache-ro-full", "cache-ro-full2", "cache-full",
      "cache-full2",  "cache-corrupt",      "half-config"};
  for (int i = 0; i < 4; ++i) repos.push_back(absl::StrCat("shared", i));
  for (int i = 0; i < 8; ++i) repos.push_back(absl::StrCat("storm", i));
  ::testing::AddGlobalTestEnvironment(new imgsel::integration::WorldEnvironment({repos, {}}));
  return RUN_ALL_TESTS();
}
