#include "plugin/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "plugin/decision_log.h"
#include "plugin/metrics_http.h"
#include "plugin/process_metrics.h"

namespace imgsel::plugin {
namespace {

TEST(MetricsTest, RendersCountersAndCumulativeHistograms) {
  Metrics m;
  m.CountPull(PullOutcome::kSelected);
  m.CountPull(PullOutcome::kSelected);
  m.CountPull(PullOutcome::kFallback);
  m.CountFallback(FallbackReason::kTimeout);
  m.CountPassthrough(CriMethod::kListImages, false);
  m.CountPassthrough(CriMethod::kRemoveImage, true);
  m.pull_seconds.Observe(absl::Microseconds(50));  // first bucket
  m.pull_seconds.Observe(absl::Milliseconds(3));   // le=0.005
  m.pull_seconds.Observe(absl::Seconds(100));      // +Inf only
  const std::string text = m.Render();
  for (const char* line : {
           "# TYPE imgseld_pulls_total counter",
           "imgseld_pulls_total{outcome=\"selected\"} 2",
           "imgseld_pulls_total{outcome=\"fallback\"} 1",
           "imgseld_fallbacks_total{reason=\"timeout\"} 1",
           "imgseld_fallbacks_total{reason=\"record\"} 0",
           "imgseld_passthrough_total{method=\"ListImages\"} 1",
           "imgseld_upstream_errors_total{method=\"RemoveImage\"} 1",
           "# TYPE imgseld_pull_seconds histogram",
           "imgseld_pull_seconds_bucket{le=\"0.0001\"} 1",
           "imgseld_pull_seconds_bucket{le=\"0.0025\"} 1",
           "imgseld_pull_seconds_bucket{le=\"0.005\"} 2",
           "imgseld_pull_seconds_bucket{le=\"30\"} 2",
           "imgseld_pull_seconds_bucket{le=\"+Inf\"} 3",
           "imgseld_pull_seconds_count 3",
       }) {
    EXPECT_TRUE(absl::StrContains(text, std::string(line) + "\n")) << line << "\n" << text;
  }
}

TEST(MetricsTest, MethodsFromAnyCriVersion) {
  EXPECT_EQ(CriMethodFromPath("/runtime.v1.ImageService/PullImage"), CriMethod::kPullImage);
  EXPECT_EQ(CriMethodFromPath("/runtime.v1alpha2.ImageService/PullImage"), CriMethod::kPullImage);
  EXPECT_EQ(CriMethodFromPath("/runtime.v1.ImageService/ImageFsInfo"), CriMethod::kImageFsInfo);
  EXPECT_EQ(CriMethodFromPath("/runtime.v1.RuntimeService/PullImage"), CriMethod::kOther);
  EXPECT_EQ(CriMethodFromPath("/runtime.v1.ImageService/Whatever"), CriMethod::kOther);
}

// Without metrics_allow_remote, loopback only; with it, any numeric
// address; never a name to look up.
TEST(MetricsTest, AddressesByExposure) {
  struct Case {
    const char* address;
    bool allow_remote;
    bool ok;
    const char* host;
    bool loopback;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"127.0.0.1:9464", false, true, "127.0.0.1", true},
           {"localhost:9464", false, true, "127.0.0.1", true},
           {"[::1]:9464", false, true, "::1", true},
           {"127.0.0.2:9464", false, true, "127.0.0.2", true},
           {"0.0.0.0:9464", false, false, "", false},
           {"10.0.0.5:9464", false, false, "", false},
           {"[::]:9464", false, false, "", false},
           {"0.0.0.0:9464", true, true, "0.0.0.0", false},
           {"10.0.0.5:9464", true, true, "10.0.0.5", false},
           {"[::]:9464", true, true, "::", false},
           {"[::1]:9464", true, true, "::1", true},
           {"node-a:9464", true, false, "", false},
           {"127.0.0.1", false, false, "", false},
           {"127.0.0.1:99999", true, false, "", false},
       }) {
    auto a = ParseMetricsAddress(c.address, c.allow_remote);
    EXPECT_EQ(a.ok(), c.ok) << c.address << " allow_remote=" << c.allow_remote;
    if (a.ok()) {
      EXPECT_EQ(a->host, c.host) << c.address;
      EXPECT_EQ(a->loopback, c.loopback) << c.address;
    }
  }
  // The refusal names the setting that would allow it.
  auto refused = ParseMetricsAddress("0.0.0.0:9464", false);
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "metrics_allow_remote = true"))
      << refused.status();
}

TEST(MetricsTest, BuildInfoNamesTheVersion) {
  EXPECT_TRUE(absl::StrContains(Metrics("1.2.3").Render(),
                                "# TYPE imgsel_build_info gauge\n"
                                "imgsel_build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(Metrics("1\"x\\").Render(),
                                "imgsel_build_info{version=\"1\\\"x\\\\\"} 1\n"));
}

TEST(ProcessMetricsTest, ParsesStatFields) {
  // pid (comm) state ppid ... utime=14 stime=15 ... num_threads=20 ... rss=24
  auto stat = [](const std::string& comm, int utime, int stime, int threads, int rss) {
    std::string s = "4242 (" + comm + ") S";
    for (int field = 4; field <= 30; ++field) {
      int v = field;
      if (field == 14) v = utime;
      if (field == 15) v = stime;
      if (field == 20) v = threads;
      if (field == 24) v = rss;
      s += " " + std::to_string(v);
    }
    return s + "\n";
  };
  struct Case {
    std::string text;
    bool ok;
    double cpu_seconds;
    int64_t threads;
    int64_t resident_bytes;
  };
  for (const Case& c : std::vector<Case>{
           {stat("imgseld", 150, 50, 9, 1000), true, 2.0, 9, 1000 * 4096},
           {stat("a b) c (d", 1, 0, 1, 1), true, 0.01, 1, 4096},  // ')' in the name
           {stat("imgseld", 0, 0, 1, 0), true, 0, 1, 0},
           {"4242 (imgseld) S 1 2 3", false, 0, 0, 0},
           {"no parentheses at all", false, 0, 0, 0},
           {"4242 (imgseld) S 1 2 3 4 5 6 7 8 9 10 x 12 13 14 15 16 17 18 19 20 21 22", false, 0, 0,
            0},
       }) {
    auto s = ParseProcStat(c.text, /*ticks_per_second=*/100, /*page_bytes=*/4096);
    ASSERT_EQ(s.ok(), c.ok) << c.text << s.status();
    if (!s.ok()) continue;
    EXPECT_DOUBLE_EQ(s->cpu_seconds, c.cpu_seconds) << c.text;
    EXPECT_EQ(s->threads, c.threads) << c.text;
    EXPECT_EQ(s->resident_bytes, c.resident_bytes) << c.text;
  }
}

// What a scrape shows follows the process: a descriptor opened and a
// thread started are counted at the next reading.
TEST(ProcessMetricsTest, FollowsThisProcess) {
  auto before = ReadProcessStats("/proc/self");
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_GT(before->resident_bytes, 0);
  const int fd = dup(1);
  absl::Notification started, stop;
  std::thread extra([&] {
    started.Notify();
    stop.WaitForNotification();
  });
  started.WaitForNotification();
  auto during = ReadProcessStats("/proc/self");
  stop.Notify();
  extra.join();
  close(fd);
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->open_fds, before->open_fds + 1);
  EXPECT_EQ(during->threads, before->threads + 1);
  EXPECT_GE(during->cpu_seconds, before->cpu_seconds);
  std::string text;
  RenderProcessStats(text, *during);
  for (const std::string& line : std::vector<std::string>{
           "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes " +
               std::to_string(during->resident_bytes) + "\n",
           std::string("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "),
           "# TYPE process_threads gauge\nprocess_threads " + std::to_string(during->threads) +
               "\n",
           "# TYPE process_open_fds gauge\nprocess_open_fds " + std::to_string(during->open_fds) +
               "\n",
       }) {
    EXPECT_TRUE(absl::StrContains(text, line)) << line << "\n" << text;
  }
}

// A /proc without the process's files: an error, not figures of zero.
TEST(ProcessMetricsTest, MissingProcIsAnError) {
  EXPECT_FALSE(ReadProcessStats(::testing::TempDir() + "/no-such-proc").ok());
}

// The answer to a scrape, or "" when none came within `wait`.
std::string Scrape(int port, absl::Duration wait) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  timeval tv{static_cast<time_t>(absl::ToInt64Seconds(wait)), 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string got;
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) got.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return got;
}

// A connected loopback socket to `port`, or -1.
int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// A client that sends its request a byte at a time, for longer than a
// scraper waits, does not keep the scrape after it from being answered, and
// is itself cut off once its 2 s are spent.
TEST(MetricsHttpTest, ASlowClientHoldsNoScrapeBackAndIsCutOff) {
  auto server =
      MetricsHttpServer::Start("127.0.0.1:0", false, [] { return std::string("up 1\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  std::atomic<bool> cut_off{false};
  absl::Notification connected;
  std::thread slow([&] {
    const int fd = Connect(port);
    connected.Notify();
    // Up to 8 s of one byte every 400 ms, until the server closes.
    for (int i = 0; fd >= 0 && i < 20; ++i) {
      if (send(fd, "G", 1, MSG_NOSIGNAL) != 1) {
        cut_off = true;
        break;
      }
      absl::SleepFor(absl::Milliseconds(400));
    }
    if (fd >= 0) close(fd);
  });
  connected.WaitForNotification();  // the slow client connects first
  const std::string answer = Scrape(port, absl::Seconds(3));
  slow.join();
  EXPECT_TRUE(absl::StrContains(answer, "200 OK")) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "up 1")) << answer;
  EXPECT_TRUE(cut_off);
}

// Connections that send nothing (30 of them, as a port scanner or a stuck
// client might hold) do not stand between a scraper and its answer.
TEST(MetricsHttpTest, IdleConnectionsDoNotHoldAScrapeBack) {
  auto server =
      MetricsHttpServer::Start("127.0.0.1:0", false, [] { return std::string("up 1\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  std::vector<int> idle;
  for (int i = 0; i < 30; ++i) {
    idle.push_back(Connect(port));
    ASSERT_GE(idle.back(), 0);
  }
  const absl::Time start = absl::Now();
  const std::string answer = Scrape(port, absl::Seconds(3));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_TRUE(absl::StrContains(answer, "200 OK")) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "up 1")) << answer;
  for (int fd : idle) close(fd);
}

// Past MetricsHttpServer::kMaxConnections open at once, a new connection is
// answered 503 and closed at once, not kept waiting behind the others; once
// those are gone, scrapes are answered again.
TEST(MetricsHttpTest, ConnectionsPastTheLimitAreRefused) {
  auto server =
      MetricsHttpServer::Start("127.0.0.1:0", false, [] { return std::string("up 1\n"); });
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->port();
  std::vector<int> idle;
  for (int i = 0; i < MetricsHttpServer::kMaxConnections; ++i) {
    idle.push_back(Connect(port));
    ASSERT_GE(idle.back(), 0);
  }
  const std::string refused = Scrape(port, absl::Seconds(3));
  EXPECT_TRUE(absl::StartsWith(refused, "HTTP/1.0 503 ")) << refused;
  for (int fd : idle) close(fd);
  // The server sees the closes on its own time: a bounded wait for it.
  std::string answer;
  for (const absl::Time give_up = absl::Now() + absl::Seconds(5);
       !absl::StrContains(answer, "200 OK") && absl::Now() < give_up;) {
    answer = Scrape(port, absl::Seconds(3));
  }
  EXPECT_TRUE(absl::StrContains(answer, "up 1")) << answer;
}

TEST(DecisionLogTest, OneJsonLineWithoutSecrets) {
  DecisionLine line;
  line.image = "host/app:v1";
  line.outcome = "fallback";
  line.reason = "resolve";
  line.detail = "say \"hi\"\n";
  line.select_time = absl::Milliseconds(2);
  const std::string text = FormatDecisionLine(line, absl::FromUnixSeconds(0));
  EXPECT_EQ(text.find('\n'), text.size() - 1);
  EXPECT_TRUE(absl::StartsWith(text, "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"msg\":\"pull\""));
  EXPECT_TRUE(absl::StrContains(text, "\"detail\":\"say \\\"hi\\\"\\n\"")) << text;
  EXPECT_TRUE(absl::StrContains(text, "\"select_ms\":2.000")) << text;
  EXPECT_FALSE(absl::StrContains(text, "handed_over")) << "nothing handed over: no field";
  line.handed_over = 2;
  EXPECT_TRUE(
      absl::StrContains(FormatDecisionLine(line, absl::FromUnixSeconds(0)), "\"handed_over\":2}"));
}

// Every string value comes from outside (the image of a CRI request, a
// registry's error text, a handler name): each is kept whole up to
// kMaxLogFieldBytes, and past it cut there, never inside a character, with
// its length, so no pull writes a line of megabytes.
TEST(DecisionLogTest, EveryValueIsCutAtItsBound) {
  const std::string at_bound(kMaxLogFieldBytes, 'a');
  const std::string huge(16 << 20, 'b');
  // "é" is two bytes: the bound falls between them.
  const std::string split = std::string(kMaxLogFieldBytes - 1, 'c') + "\xc3\xa9tail";
  struct Field {
    const char* key;
    std::string DecisionLine::*member;
  };
  const Field fields[] = {
      {"image", &DecisionLine::image},
      {"record", &DecisionLine::record},
      {"outcome", &DecisionLine::outcome},
      {"reason", &DecisionLine::reason},
      {"detail", &DecisionLine::detail},
      {"chosen", &DecisionLine::chosen},
      {"index", &DecisionLine::index},
      {"platform", &DecisionLine::platform},
      {"policy", &DecisionLine::policy},
      {"handler", &DecisionLine::handler},
      {"handler_source", &DecisionLine::handler_source},
      {"handler_error", &DecisionLine::handler_error},
      {"code", &DecisionLine::code},
  };
  for (const Field& f : fields) {
    DecisionLine line;
    line.*f.member = at_bound;
    std::string text = FormatDecisionLine(line, absl::FromUnixSeconds(0));
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat("\"", f.key, "\":\"", at_bound, "\"")))
        << f.key << ": a value at the bound is kept whole";

    line.*f.member = huge;
    text = FormatDecisionLine(line, absl::FromUnixSeconds(0));
    EXPECT_LT(text.size(), kMaxLogFieldBytes + 256) << f.key;
    EXPECT_TRUE(absl::StrContains(
        text, absl::StrCat("\"", f.key, "\":\"", std::string(kMaxLogFieldBytes, 'b'), "...(",
                           huge.size(), " bytes)\"")))
        << f.key;

    line.*f.member = split;
    text = FormatDecisionLine(line, absl::FromUnixSeconds(0));
    EXPECT_TRUE(absl::StrContains(text, absl::StrCat(std::string(kMaxLogFieldBytes - 1, 'c'),
                                                     "...(", split.size(), " bytes)\"")))
        << f.key << ": the cut moves back to the start of the character";
  }
}

}  // namespace
}  // namespace imgsel::plugin

namespace imgsel::plugin {
namespace {

// Log lines carry their syslog priority when stderr is the journal, so
// `journalctl -p err` finds errors; JOURNAL_STREAM must name stderr's own
// device and inode, as systemd sets it.
TEST(DecisionLogTest, JournalPriorities) {
  EXPECT_EQ(PriorityOfLevel("error"), LogPriority::kError);
  EXPECT_EQ(PriorityOfLevel("warn"), LogPriority::kWarn);
  EXPECT_EQ(PriorityOfLevel("info"), LogPriority::kInfo);
  EXPECT_EQ(PriorityOfLevel("debug"), LogPriority::kDebug);
  EXPECT_EQ(static_cast<int>(LogPriority::kError), 3);  // sd-daemon's <3>
  const struct {
    const char* env;
    bool journal;
  } cases[] = {
      {"8:1234", true},  {"8:1235", false}, {"9:1234", false}, {"8", false},
      {"x:1234", false}, {"", false},       {nullptr, false},  {"8:1234:5", false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(IsJournalStream(c.env, 8, 1234), c.journal) << (c.env ? c.env : "(unset)");
  }
}

// A server for other nodes is started only when allowed: refused with the
// setting's name otherwise. (The allowed case asks for an address this
// machine does not have, so nothing listens beyond loopback in a test: the
// refusal is then the kernel's, not imgseld's.)
TEST(MetricsHttpTest, RemoteAddressOnlyWhenAllowed) {
  auto render = [] { return std::string("up 1\n"); };
  auto refused = MetricsHttpServer::Start("192.0.2.1:0", false, render);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "metrics_allow_remote"))
      << refused.status();
  auto allowed = MetricsHttpServer::Start("192.0.2.1:0", true, render);
  ASSERT_FALSE(allowed.ok());
  EXPECT_TRUE(absl::StrContains(allowed.status().message(), "cannot listen on 192.0.2.1:0"))
      << allowed.status();
  auto loopback = MetricsHttpServer::Start("127.0.0.1:0", true, render);
  ASSERT_TRUE(loopback.ok()) << loopback.status();
  EXPECT_TRUE(absl::StrContains(Scrape((*loopback)->port(), absl::Seconds(3)), "up 1"));
}

}  // namespace
}  // namespace imgsel::plugin
