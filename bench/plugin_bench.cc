// imgseld, measured as a client sees it (docs/BENCHMARKS.md "imgseld").
//
//   plugin_bench [--requests N] [--pulls N] [--hop N] [--skip-pulls]
//   plugin_bench --callgrind N [--callgrind-keep DIR]
//   plugin_bench --cpu N [--rounds R] [--kind NAME]
//   plugin_bench --memory ROUNDS
//
// 1. Latency: Select with raw index bytes (the example index, 8 entries)
//    against grpc.health.v1.Health/Check — an empty unary RPC on the same
//    socket and server — alternating call by call, then in blocks of 100,
//    p50/p99 of each; then a breakdown, call by call, against Select calls
//    with a small answer, a refused one, a padded request and the example
//    index in SELECT_VIEW_BASIC, with the CPU each kind costs imgseld and
//    the client per call.
// 2. Throughput: 16 clients, each with its own connection, Select with raw
//    index bytes as fast as answers come, a fixed number of calls each;
//    driven by a thread per client, then by one thread for all of them.
// 3. RSS of the imgseld process: idle, and the peak sampled during (2).
// 4. The floor: the latency readings of (1) against answer_floor_server,
//    which answers Select with imgseld's answer for the example index
//    without selecting. The part of (1)'s ratio that remains there is what
//    the answer itself costs; the rest is imgseld's selection.
// 5. Pull: a direct CRI PullImage to containerd against one through
//    imgseld's proxy, of the same image from a loopback docker-registry,
//    alternating, the image removed (with containerd's synchronous garbage
//    collection) after every pull so each one fetches and unpacks.
// 6. The extra hop: ImageStatus, ListImages (100 images in containerd's
//    CRI) and ImageFsInfo through imgseld's CRI socket against the same
//    calls straight to containerd, call by call, p50/p99 of each, next to an
//    empty call on each socket (containerd: Health/Check; imgseld: a method
//    it refuses itself, UNIMPLEMENTED, nothing forwarded) and Health/Check
//    forwarded through imgseld (the hop and containerd's empty call).
// Also with (1): Select in SELECT_VIEW_BASIC against the empty RPC in pairs.
// --callgrind N instead counts the instructions imgseld executes per call of
// each breakdown kind, N calls each, with imgseld under valgrind's callgrind;
// --callgrind-keep DIR keeps each kind's profile there (DIR/KIND.callgrind,
// for callgrind_annotate: where in imgseld a kind's instructions go).
// --cpu N instead gives the CPU imgseld and the client spend per call of each
// breakdown kind, in R rounds (5 unless given) of N calls each; --kind keeps
// the kinds whose name contains NAME ("basic view").
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "cri/runtime/v1/api.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "imgsel/v1/selector.grpc.pb.h"
#include "oci/digest.h"
#include "plugin/content_handover.h"
#include "plugin/image_records.h"
#include "plugin/selector_service.h"
#include "plugin/upstream.h"
#include "tests/integration/harness.h"
#include "tests/registry/fake_server.h"

namespace imgsel::bench {
namespace {

using integration::Process;

constexpr char kIndexHex[] = "25379efb0d455eb3a57777dffb980043481090ea07c60f68e2f5bf4edcbce8a7";
// The entry containerd's own match and imgseld's choice agree on here.
constexpr char kV3Hex[] = "7619113e33a90ff18f06dfd58cb1490aabc3bb79ad82ba67b3838dbe7d01fe40";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// CPU time of a process so far, in microseconds: the scheduler's own count
// of every live thread's run time (/proc/PID/task/TID/schedstat, field 1, in
// nanoseconds), exact where utime and stime are counted in clock ticks.
double CpuUs(pid_t pid) {
  double ns = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream in(task.path() / "schedstat");
    double run_ns = 0;
    if (in >> run_ns) ns += run_ns;
  }
  return ns / 1000;
}

// This process's CPU time so far, exited threads included, in microseconds.
double ProcessCpuUs() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return absl::ToDoubleMicroseconds(absl::DurationFromTimeval(ru.ru_utime) +
                                    absl::DurationFromTimeval(ru.ru_stime));
}

long RssKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      long kib = 0;
      std::istringstream(line.substr(6)) >> kib;
      return kib;
    }
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

struct Daemon {
  std::unique_ptr<Process> process;
  std::string api;
  std::string cri;
};

// `wrapper`, when given, runs imgseld under it (valgrind).
Daemon StartImgseld(const std::string& dir, const std::string& containerd_socket,
                    const std::string& certs, std::vector<std::string> wrapper = {},
                    const std::string& extra_config = "") {
  Daemon d;
  d.api = dir + "/imgsel.sock";
  d.cri = dir + "/cri.sock";
  const std::string config = dir + "/imgsel.toml";
  std::ofstream(config) << "version = 1\n[registry]\nconfig_path = \"" << certs << "\"\n"
                        << "[server]\nsocket = \"" << d.api << "\"\ncri_socket = \"" << d.cri
                        << "\"\ncontainerd_socket = \"" << containerd_socket << "\"\n"
                        << extra_config;
  std::vector<std::string> argv = std::move(wrapper);
  for (std::string a :
       {std::string(IMGSELD_BINARY), std::string("--config"), config, std::string("--host-profile"),
        std::string(IMGSEL_EXAMPLES) + "/hosts/amd64-v3.json"}) {
    argv.push_back(std::move(a));
  }
  auto p = Process::Spawn(argv, dir + "/imgseld.log");
  if (!p.ok() || !integration::WaitForSocket(d.api, absl::Seconds(60))) {
    fprintf(stderr, "imgseld did not start: %s\n", ReadFile(dir + "/imgseld.log").c_str());
    exit(1);
  }
  d.process = *std::move(p);
  return d;
}

// `clients` connections, each with one Select in flight at a time, `calls`
// calls each, as fast as answers come. The load comes either from a thread
// per client on the synchronous stub, or from one thread driving every
// client's calls through a completion queue: the same 16 connections and
// calls in flight for imgseld, for much less of the shared cores' time
// spent in the load generator.
void Throughput(const Daemon& d, const imgsel::v1::SelectRequest& select, int clients, int calls,
                bool async_client, long* peak_rss) {
  std::atomic<int> failures{0};
  std::atomic<bool> loading{true};
  std::thread sampler([&] {
    while (loading) {
      *peak_rss = std::max(*peak_rss, RssKiB(d.process->pid()));
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  std::vector<std::unique_ptr<imgsel::v1::Selector::Stub>> stubs;
  for (int c = 0; c < clients; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("client_index", c);  // a connection per client
    stubs.push_back(imgsel::v1::Selector::NewStub(
        grpc::CreateCustomChannel("unix:" + d.api, grpc::InsecureChannelCredentials(), args)));
  }
  const double server_cpu0 = CpuUs(d.process->pid());
  const double client_cpu0 = ProcessCpuUs();
  const absl::Time start = absl::Now();
  if (!async_client) {
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        for (int i = 0; i < calls; ++i) {
          grpc::ClientContext ctx;
          imgsel::v1::SelectResponse resp;
          if (!stubs[c]->Select(&ctx, select, &resp).ok() || resp.selected().digest().empty()) {
            ++failures;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
  } else {
    struct Call {
      int client = 0;
      int done = 0;
      std::unique_ptr<grpc::ClientContext> ctx;
      imgsel::v1::SelectResponse resp;
      grpc::Status status;
      std::unique_ptr<grpc::ClientAsyncResponseReader<imgsel::v1::SelectResponse>> rpc;
    };
    grpc::CompletionQueue cq;
    std::vector<Call> state(clients);
    auto issue = [&](Call& c) {
      c.ctx = std::make_unique<grpc::ClientContext>();
      c.resp.Clear();
      c.rpc = stubs[c.client]->AsyncSelect(c.ctx.get(), select, &cq);
      c.rpc->Finish(&c.resp, &c.status, &c);
    };
    for (int c = 0; c < clients; ++c) {
      state[c].client = c;
      issue(state[c]);
    }
    int running = clients;
    void* tag = nullptr;
    bool ok = false;
    while (running > 0 && cq.Next(&tag, &ok)) {
      Call& c = *static_cast<Call*>(tag);
      if (!ok || !c.status.ok() || c.resp.selected().digest().empty()) ++failures;
      if (++c.done < calls) {
        issue(c);
      } else {
        --running;
      }
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  const double server_cpu = CpuUs(d.process->pid()) - server_cpu0;
  const double client_cpu = ProcessCpuUs() - client_cpu0;
  loading = false;
  sampler.join();
  const int total = calls * clients;
  printf("throughput, %s  %d clients x %d calls: %.0f selections/s, errors %d\n",
         async_client ? "one client thread" : "a thread per client", clients, calls,
         total / seconds, failures.load());
  // Both sides share the machine's cores: what each spent per selection.
  printf("  CPU per selection: imgseld %.1f us, load generator %.1f us\n", server_cpu / total,
         client_cpu / total);
}

// The calls the figures are made of, on one connection to imgseld: Select
// with the example index's bytes (full answer), the empty RPC, and the
// breakdown's kinds. Select on a single-manifest document (the same method
// and path, a 200-byte answer with no candidates), the same padded with
// spaces to the example index's size (the request's bytes alone), a Select
// refused as INVALID_ARGUMENT (an error status, no answer) and the example
// in SELECT_VIEW_BASIC.
struct Calls {
  explicit Calls(const Daemon& d)
      : channel(grpc::CreateChannel("unix:" + d.api, grpc::InsecureChannelCredentials())),
        api(imgsel::v1::Selector::NewStub(channel)),
        health(grpc::health::v1::Health::NewStub(channel)) {
    select.set_index(ReadFile(absl::StrCat(IMGSEL_EXAMPLES, "/layout/blobs/sha256/", kIndexHex)));
    small.set_index(
        R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]})");
    basic = select;
    basic.set_view(imgsel::v1::SELECT_VIEW_BASIC);
    refused.set_index("not json");
    padded = small;
    padded.set_index(small.index() +
                     std::string(select.index().size() - small.index().size(), ' '));
  }

  // The example index, full answer: true when it chose an entry.
  bool Select() {
    grpc::ClientContext ctx;
    imgsel::v1::SelectResponse resp;
    const bool ok = api->Select(&ctx, select, &resp).ok() && !resp.selected().digest().empty();
    if (server_us != nullptr) server_us->push_back(static_cast<double>(resp.elapsed_us()));
    return ok;
  }
  bool Empty() {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    return health->Check(&ctx, req, &resp).ok();
  }
  void SelectWith(const imgsel::v1::SelectRequest& req) {
    grpc::ClientContext ctx;
    imgsel::v1::SelectResponse resp;
    (void)api->Select(&ctx, req, &resp);
  }

  struct Kind {
    const char* name;
    std::function<void()> call;
  };
  std::vector<Kind> Kinds() {
    return {{"empty RPC", [this] { Empty(); }},
            {"Select, small answer", [this] { SelectWith(small); }},
            {"Select, refused", [this] { SelectWith(refused); }},
            {"Select, padded request", [this] { SelectWith(padded); }},
            {"Select, basic view", [this] { SelectWith(basic); }},
            {"Select, full answer", [this] { Select(); }}};
  }

  // When set, Select() adds each answer's elapsed_us here.
  std::vector<double>* server_us = nullptr;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<imgsel::v1::Selector::Stub> api;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
  imgsel::v1::SelectRequest select, small, basic, refused, padded;
};

// Two readings of the same comparison, `requests` calls of each kind. In
// pairs: an empty call then a Select, so both kinds run under the same
// conditions, each following the other. In blocks of 100 of each kind: each
// kind follows itself, which keeps gRPC's adaptive read size and the caches
// tuned to it; the empty call gains more from that than Select does.
// `server_time`: also the answers' elapsed_us, imgseld's time reading the
// index and matching (the answer's encoding comes after it).
void LatencyFigures(Calls& calls, int requests, const char* server, bool server_time) {
  auto latency = [&](const char* how, int block) {
    std::vector<double> sel_us, empty_us, server_us;
    calls.server_us = server_time ? &server_us : nullptr;
    int errors = 0;
    for (int done = 0; done < requests; done += block) {
      for (int i = 0; i < block; ++i) {
        absl::Time t = absl::Now();
        errors += calls.Empty() ? 0 : 1;
        empty_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
      }
      for (int i = 0; i < block; ++i) {
        absl::Time t = absl::Now();
        errors += calls.Select() ? 0 : 1;
        sel_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
      }
    }
    const double sp50 = Percentile(sel_us, 0.5), sp99 = Percentile(sel_us, 0.99);
    const double ep50 = Percentile(empty_us, 0.5), ep99 = Percentile(empty_us, 0.99);
    printf("latency, %s, %s  (%zu calls each, errors %d)\n", server, how, sel_us.size(), errors);
    printf("  empty RPC (Health/Check)  p50 %7.1f us  p99 %7.1f us\n", ep50, ep99);
    printf("  Select (index bytes)      p50 %7.1f us  p99 %7.1f us\n", sp50, sp99);
    printf("  ratio                     p50 %7.2fx    p99 %7.2fx\n", sp50 / ep50, sp99 / ep99);
    if (server_time) {
      printf("  imgseld reading, matching p50 %7.1f us  p99 %7.1f us  (elapsed_us)\n",
             Percentile(server_us, 0.5), Percentile(server_us, 0.99));
    }
    calls.server_us = nullptr;
  };
  latency("in pairs", 1);
  latency("in blocks of 100", 100);
  if (!server_time) return;
  // The basic view (the decision without the candidates' detail), in pairs.
  std::vector<double> basic_us, empty_us;
  for (int i = 0; i < requests; ++i) {
    absl::Time t = absl::Now();
    calls.Empty();
    empty_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
    t = absl::Now();
    calls.SelectWith(calls.basic);
    basic_us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
  }
  const double bp50 = Percentile(basic_us, 0.5), ep50 = Percentile(empty_us, 0.5);
  printf("latency, %s, basic view in pairs  (%d calls each)\n", server, requests);
  printf("  empty RPC (Health/Check)  p50 %7.1f us  p99 %7.1f us\n", ep50,
         Percentile(empty_us, 0.99));
  printf("  Select, basic view        p50 %7.1f us  p99 %7.1f us\n", bp50,
         Percentile(basic_us, 0.99));
  printf("  ratio                     p50 %7.2fx\n", bp50 / ep50);
}

// The same readings against answer_floor_server, serving the answer imgseld
// gave for the example index without selecting: what the request and the
// answer cost the client, gRPC and the kernel before imgseld does any work.
void FloorFigures(const std::string& dir, const Daemon& imgseld, int requests) {
  Calls imgseld_calls(imgseld);
  grpc::ClientContext ctx;
  imgsel::v1::SelectResponse parsed;
  if (!imgseld_calls.api->Select(&ctx, imgseld_calls.select, &parsed).ok()) {
    printf("floor: skipped (imgseld did not answer)\n");
    return;
  }
  const std::string answer_file = dir + "/answer.bin";
  std::ofstream(answer_file, std::ios::binary) << parsed.SerializeAsString();
  Daemon floor;
  floor.api = dir + "/floor.sock";
  auto p = Process::Spawn({ANSWER_FLOOR_SERVER, floor.api, answer_file}, dir + "/floor.log");
  if (!p.ok() || !integration::WaitForSocket(floor.api, absl::Seconds(30))) {
    printf("floor: skipped (answer_floor_server did not start: %s)\n",
           ReadFile(dir + "/floor.log").c_str());
    return;
  }
  floor.process = *std::move(p);
  Calls calls(floor);
  for (int i = 0; i < 500; ++i) calls.Select(), calls.Empty();  // warm up
  LatencyFigures(calls, requests, "the answer alone", /*server_time=*/false);
}

void ApiFigures(const Daemon& d, int requests) {
  Calls calls(d);
  const imgsel::v1::SelectRequest& select = calls.select;
  for (int i = 0; i < 500; ++i) calls.Select(), calls.Empty();  // warm up
  {
    grpc::ClientContext ctx;
    imgsel::v1::SelectResponse resp;
    (void)calls.api->Select(&ctx, select, &resp);
    printf("messages  Select request %zu bytes, response %zu bytes (server time %llu us)\n",
           select.ByteSizeLong(), resp.ByteSizeLong(),
           static_cast<unsigned long long>(resp.elapsed_us()));
  }
  const long idle_rss = RssKiB(d.process->pid());
  LatencyFigures(calls, requests, "imgseld", /*server_time=*/true);

  // What the gap is made of: the breakdown's kinds interleaved one by one.
  {
    const std::vector<Calls::Kind> kinds = calls.Kinds();
    std::vector<std::vector<double>> us(kinds.size());  // per kind, interleaved
    const int rounds = std::max(100, requests / 4);
    for (int i = 0; i < rounds; ++i) {
      for (size_t k = 0; k < kinds.size(); ++k) {
        absl::Time t = absl::Now();
        kinds[k].call();
        us[k].push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
      }
    }
    // CPU per call, each kind alone in a run of its own: where the
    // latency goes when it is not spent waiting.
    const int cpu_calls = std::max(200, requests / 4);
    std::vector<std::pair<double, double>> cpu;  // server, client
    for (const Calls::Kind& k : kinds) {
      const double s0 = CpuUs(d.process->pid()), c0 = ProcessCpuUs();
      for (int i = 0; i < cpu_calls; ++i) k.call();
      cpu.emplace_back((CpuUs(d.process->pid()) - s0) / cpu_calls,
                       (ProcessCpuUs() - c0) / cpu_calls);
    }
    printf("breakdown  (interleaved call by call, %d each; CPU per call in runs of %d)\n", rounds,
           cpu_calls);
    const double base = Percentile(us[0], 0.5);
    for (size_t k = 0; k < kinds.size(); ++k) {
      const double p50 = Percentile(us[k], 0.5);
      printf("  %-24s p50 %7.1f us  %5.2fx   CPU imgseld %5.1f us, client %5.1f us\n",
             kinds[k].name, p50, p50 / base, cpu[k].first, cpu[k].second);
    }
  }

  constexpr int kClients = 16;
  const int per_client = std::max(1, requests * 2 / kClients);
  long peak_rss = 0;
  Throughput(d, select, kClients, per_client, /*async_client=*/false, &peak_rss);
  Throughput(d, select, kClients, per_client, /*async_client=*/true, &peak_rss);
  printf("rss  idle %.1f MiB, peak under load %.1f MiB\n", idle_rss / 1024.0, peak_rss / 1024.0);
}

// Instructions imgseld executes per call of each kind, which the machine's
// noise does not move: imgseld runs under callgrind; for each kind the
// counters are zeroed, `calls` calls made, the counters dumped and their
// total read back.
void CallgrindFigures(const std::string& dir, int calls, const std::string& keep_dir) {
  constexpr char kValgrind[] = "/usr/bin/valgrind";
  constexpr char kControl[] = "/usr/bin/callgrind_control";
  if (access(kValgrind, X_OK) != 0 || access(kControl, X_OK) != 0) {
    printf("callgrind: skipped (no %s; apt-get install valgrind)\n", kValgrind);
    return;
  }
  const std::string out = dir + "/callgrind.out";
  Daemon d = StartImgseld(dir, dir + "/no-containerd.sock", dir,
                          {kValgrind, "--tool=callgrind", "--callgrind-out-file=" + out});
  const std::string pid = absl::StrCat(d.process->pid());
  Calls c(d);
  for (int i = 0; i < 200; ++i) {
    for (const Calls::Kind& k : c.Kinds()) k.call();  // warm up
  }
  printf("instructions in imgseld per call  (callgrind, %d calls of each kind)\n", calls);
  int part = 0;
  for (const Calls::Kind& k : c.Kinds()) {
    (void)integration::RunCommand({kControl, "-z", pid}, absl::Seconds(30));
    for (int i = 0; i < calls; ++i) k.call();
    (void)integration::RunCommand({kControl, "-d", pid}, absl::Seconds(30));
    // The dump's "summary:" line is its total; wait for the file to be whole.
    const std::string file = absl::StrCat(out, ".", ++part);
    double total = -1;
    for (int tries = 0; tries < 100 && total < 0; ++tries) {
      std::ifstream in(file);
      std::string line;
      bool whole = false;
      double summary = -1;
      while (std::getline(in, line)) {
        if (line.rfind("summary: ", 0) == 0) summary = std::stod(line.substr(9));
        if (line.rfind("totals: ", 0) == 0) whole = true;
      }
      if (whole) total = summary;
      if (total < 0) absl::SleepFor(absl::Milliseconds(100));
    }
    if (total < 0) {
      printf("  %-24s no dump in %s\n", k.name, file.c_str());
      continue;
    }
    printf("  %-24s %8.0f\n", k.name, total / calls);
    if (!keep_dir.empty()) {
      std::string name = k.name;
      std::replace_if(
          name.begin(), name.end(),
          [](char c) { return std::isalnum(static_cast<unsigned char>(c)) == 0; }, '_');
      const std::string kept = absl::StrCat(keep_dir, "/", name, ".callgrind");
      std::error_code ec;
      std::filesystem::copy_file(file, kept, std::filesystem::copy_options::overwrite_existing, ec);
      if (ec) printf("    (not kept: %s: %s)\n", kept.c_str(), ec.message().c_str());
    }
  }
}

// CPU per call of each breakdown kind, the figure a machine shared with
// other work does not blur much (latency waits on the other work, CPU time
// mostly does not): `rounds` rounds, in each every kind runs `calls` calls
// in a row; the median round of each kind is printed, imgseld's CPU split
// into user and kernel time (/proc/PID/stat, clock ticks) and with the
// context switches it took (/proc/PID/task/TID/schedstat, field 3).
// `only`, when not empty, keeps the kinds whose name contains it (one kind
// alone for a profiler attached to imgseld, e.g. `perf record -p PID`).
void CpuFigures(const std::string& dir, int calls, int rounds, const std::string& only) {
  Daemon d = StartImgseld(dir, dir + "/no-containerd.sock", dir);
  Calls c(d);
  for (int i = 0; i < 500; ++i) {
    for (const Calls::Kind& k : c.Kinds()) k.call();  // warm up
  }
  const pid_t pid = d.process->pid();
  printf("imgseld pid %d\n", static_cast<int>(pid));
  fflush(stdout);
  // user and system ticks of every thread, live or gone.
  auto ticks = [pid](long* user, long* sys) {
    std::string stat = ReadFile(absl::StrCat("/proc/", pid, "/stat"));
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 13; ++i) in >> field;  // state .. cmajflt
    in >> *user >> *sys;
  };
  auto switches = [pid] {
    double n = 0;
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
      std::ifstream in(task.path() / "schedstat");
      double run_ns = 0, wait_ns = 0, slices = 0;
      if (in >> run_ns >> wait_ns >> slices) n += slices;
    }
    return n;
  };
  const double tick_us = 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
  struct Round {
    double server, user, sys, switches, client;
  };
  std::vector<Calls::Kind> kinds = c.Kinds();
  std::erase_if(kinds, [&](const Calls::Kind& k) {
    return !only.empty() && std::string(k.name).find(only) == std::string::npos;
  });
  std::vector<std::vector<Round>> per_kind(kinds.size());
  for (int r = 0; r < rounds; ++r) {
    for (size_t k = 0; k < kinds.size(); ++k) {
      long u0 = 0, s0 = 0, u1 = 0, s1 = 0;
      ticks(&u0, &s0);
      const double cpu0 = CpuUs(pid), sw0 = switches(), client0 = ProcessCpuUs();
      for (int i = 0; i < calls; ++i) kinds[k].call();
      const double cpu1 = CpuUs(pid), sw1 = switches(), client1 = ProcessCpuUs();
      ticks(&u1, &s1);
      per_kind[k].push_back({(cpu1 - cpu0) / calls, (u1 - u0) * tick_us / calls,
                             (s1 - s0) * tick_us / calls, (sw1 - sw0) / calls,
                             (client1 - client0) / calls});
    }
  }
  double load[3] = {0, 0, 0};
  getloadavg(load, 3);
  printf(
      "CPU per call  (%d rounds of %d calls of each kind, the median round; load %.2f %.2f %.2f)\n",
      rounds, calls, load[0], load[1], load[2]);
  for (size_t k = 0; k < kinds.size(); ++k) {
    std::vector<Round>& v = per_kind[k];
    std::sort(v.begin(), v.end(),
              [](const Round& a, const Round& b) { return a.server < b.server; });
    const Round& m = v[v.size() / 2];
    printf("  %-24s imgseld %6.1f us (user %5.1f, kernel %5.1f, %.2f switches)  client %6.1f us\n",
           kinds[k].name, m.server, m.user, m.sys, m.switches, m.client);
  }
}

absl::StatusOr<std::string> Pull(runtime::v1::ImageService::Stub& cri, const std::string& image,
                                 absl::Duration* took) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
  runtime::v1::PullImageRequest req;
  req.mutable_image()->set_image(image);
  runtime::v1::PullImageResponse resp;
  const absl::Time t = absl::Now();
  grpc::Status s = cri.PullImage(&ctx, req, &resp);
  *took = absl::Now() - t;
  if (!s.ok()) return absl::UnknownError(s.error_message());
  return resp.image_ref();
}

void Remove(runtime::v1::ImageService::Stub& cri, const std::string& id) {
  grpc::ClientContext ctx;
  runtime::v1::RemoveImageRequest req;
  req.mutable_image()->set_image(id);
  runtime::v1::RemoveImageResponse resp;
  cri.RemoveImage(&ctx, req, &resp);
}

// The layers' descriptors of a manifest, as they are written there.
std::string LayersOf(const std::string& manifest) {
  const size_t at = manifest.find("\"layers\"");
  const size_t open = manifest.find('[', at);
  const size_t close = manifest.find(']', open);
  if (at == std::string::npos || open == std::string::npos || close == std::string::npos) {
    return "[]";
  }
  return manifest.substr(open, close - open + 1);
}

// `count` images in containerd's CRI beside what is there: each a config of
// its own over the layers of `manifest` (pulled already), written into the
// content store and named "<prefix>/<i>:v1" as containerd's pulls name them.
absl::Status AddImages(const std::string& containerd_socket, const std::string& prefix,
                       const std::string& manifest, const std::string& config, int count) {
  auto channel = plugin::UnixChannel(containerd_socket);
  plugin::ContainerdContentHandover content(channel, "k8s.io");
  plugin::ContainerdImageRecords records(channel, "k8s.io");
  const std::string layers = LayersOf(manifest);
  constexpr char kManifestType[] = "application/vnd.oci.image.manifest.v1+json";
  for (int i = 0; i < count; ++i) {
    VerifiedBlob c{"application/vnd.oci.image.config.v1+json", "",
                   absl::StrCat("{\"imgsel.bench\":", i, ",", config.substr(1))};
    c.digest = Sha256Digest(c.bytes);
    VerifiedBlob m{
        kManifestType, "",
        absl::StrCat("{\"schemaVersion\":2,\"mediaType\":\"", kManifestType,
                     "\",\"config\":{\"mediaType\":\"", c.media_type, "\",\"digest\":\"", c.digest,
                     "\",\"size\":", c.bytes.size(), "},\"layers\":", layers, "}")};
    m.digest = Sha256Digest(m.bytes);
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    // The lease holds both until the record does.
    auto lease = content.HandOver("bench.invalid", "bench", {m, c}, absl::Minutes(5), deadline);
    if (!lease.ok()) return lease.status();
    plugin::ImageRecord record;
    record.name = absl::StrCat(prefix, "/", i, ":v1");
    record.media_type = m.media_type;
    record.digest = m.digest;
    record.size = static_cast<int64_t>(m.bytes.size());
    record.labels = {{plugin::kCriManagedLabel, "managed"}};
    if (absl::Status put = records.Put(record, deadline); !put.ok()) return put;
  }
  return absl::OkStatus();
}

// The calls kubelet makes most, through imgseld and direct, interleaved one
// by one so both see the same machine.
void HopFigures(const std::string& containerd_socket, const Daemon& d, const std::string& image,
                int requests) {
  auto direct_channel = plugin::UnixChannel(containerd_socket);
  auto proxy_channel = plugin::UnixChannel(d.cri);
  auto direct = runtime::v1::ImageService::NewStub(direct_channel);
  auto proxy = runtime::v1::ImageService::NewStub(proxy_channel);
  auto direct_health = grpc::health::v1::Health::NewStub(direct_channel);
  auto proxy_health = grpc::health::v1::Health::NewStub(proxy_channel);
  // Not served on the CRI socket: imgseld answers UNIMPLEMENTED itself.
  grpc::GenericStub proxy_generic(proxy_channel);
  size_t listed = 0;
  auto status = [&](runtime::v1::ImageService::Stub& s) {
    grpc::ClientContext ctx;
    runtime::v1::ImageStatusRequest req;
    req.mutable_image()->set_image(image);
    runtime::v1::ImageStatusResponse resp;
    return s.ImageStatus(&ctx, req, &resp).ok() && resp.has_image();
  };
  auto list = [&](runtime::v1::ImageService::Stub& s) {
    grpc::ClientContext ctx;
    runtime::v1::ListImagesRequest req;
    runtime::v1::ListImagesResponse resp;
    const bool ok = s.ListImages(&ctx, req, &resp).ok();
    listed = static_cast<size_t>(resp.images_size());
    return ok;
  };
  auto fs_info = [&](runtime::v1::ImageService::Stub& s) {
    grpc::ClientContext ctx;
    runtime::v1::ImageFsInfoRequest req;
    runtime::v1::ImageFsInfoResponse resp;
    return s.ImageFsInfo(&ctx, req, &resp).ok();
  };
  auto health = [&](grpc::health::v1::Health::Stub& s) {
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    grpc::health::v1::HealthCheckResponse resp;
    return s.Check(&ctx, req, &resp).ok();
  };
  auto refused = [&] {
    grpc::ClientContext ctx;
    grpc::ByteBuffer req = plugin::ToByteBuffer("");
    grpc::ByteBuffer resp;
    grpc::Status status;
    absl::Notification done;
    proxy_generic.UnaryCall(&ctx, "/runtime.v1.RuntimeService/Version", grpc::StubOptions(), &req,
                            &resp, [&](grpc::Status s) {
                              status = std::move(s);
                              done.Notify();
                            });
    done.WaitForNotification();
    return status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
  };
  struct Kind {
    const char* name;
    std::function<bool()> call;
    std::vector<double> us;
    int errors = 0;
  };
  std::vector<Kind> kinds = {
      {"empty, containerd (Health/Check)", [&] { return health(*direct_health); }},
      {"empty, imgseld (refused there)", refused},
      {"Health/Check via imgseld", [&] { return health(*proxy_health); }},
      {"ImageStatus direct", [&] { return status(*direct); }},
      {"ImageStatus via imgseld", [&] { return status(*proxy); }},
      {"ListImages direct", [&] { return list(*direct); }},
      {"ListImages via imgseld", [&] { return list(*proxy); }},
      {"ImageFsInfo direct", [&] { return fs_info(*direct); }},
      {"ImageFsInfo via imgseld", [&] { return fs_info(*proxy); }},
  };
  for (int i = 0; i < requests + 200; ++i) {  // the first 200 warm up
    for (Kind& k : kinds) {
      const absl::Time t = absl::Now();
      const bool ok = k.call();
      if (i >= 200) k.us.push_back(absl::ToDoubleMicroseconds(absl::Now() - t));
      k.errors += ok ? 0 : 1;
    }
  }
  printf("the extra hop  (interleaved call by call, %d each; ListImages lists %zu images)\n",
         requests, listed);
  for (const Kind& k : kinds) {
    printf("  %-34s p50 %7.1f us  p99 %7.1f us  errors %d\n", k.name, Percentile(k.us, 0.5),
           Percentile(k.us, 0.99), k.errors);
  }
  for (size_t k = 3; k + 1 < kinds.size(); k += 2) {
    printf("  %-34s p50 %7.2fx    p99 %7.2fx\n",
           absl::StrCat(kinds[k + 1].name, " / direct").c_str(),
           Percentile(kinds[k + 1].us, 0.5) / Percentile(kinds[k].us, 0.5),
           Percentile(kinds[k + 1].us, 0.99) / Percentile(kinds[k].us, 0.99));
  }
}

void PullFigures(const std::string& dir, int pulls, int hop_requests) {
  std::string why;
  auto registry = registry::testing::RealRegistry::Start(&why);
  if (!registry) {
    printf("pull: skipped (%s)\n", why.c_str());
    return;
  }
  const std::string certs = dir + "/certs.d";
  (void)integration::WriteHostsToml(certs, registry->host(), registry->host());
  auto containerd = integration::Containerd::Start(dir, certs);
  if (!containerd.ok()) {
    printf("pull: skipped (%s)\n", std::string(containerd.status().message()).c_str());
    return;
  }
  const std::string image = registry->host() + "/bench:v1";
  absl::Status pushed = integration::RunCommand(
      {"/usr/bin/skopeo", "copy", "--all", "--preserve-digests", "--dest-tls-verify=false",
       absl::StrCat("oci:", IMGSEL_EXAMPLES, "/layout:demo"), "docker://" + image},
      absl::Seconds(60));
  if (!pushed.ok()) {
    printf("pull: skipped (%s)\n", std::string(pushed.message()).c_str());
    return;
  }
  const std::string proxy_dir = dir + "/proxy";
  std::filesystem::create_directories(proxy_dir);
  Daemon d = StartImgseld(proxy_dir, (*containerd)->socket(), certs);
  auto direct = runtime::v1::ImageService::NewStub(plugin::UnixChannel((*containerd)->socket()));
  auto proxy = runtime::v1::ImageService::NewStub(plugin::UnixChannel(d.cri));
  std::vector<double> direct_ms, proxy_ms;
  int errors = 0;
  for (int i = 0; i < pulls + 2; ++i) {  // the first two warm both paths up
    for (bool via_proxy : {false, true}) {
      absl::Duration took;
      auto ref = Pull(via_proxy ? *proxy : *direct, image, &took);
      if (!ref.ok()) {
        ++errors;
        continue;
      }
      if (i >= 2) (via_proxy ? proxy_ms : direct_ms).push_back(absl::ToDoubleMilliseconds(took));
      Remove(*direct, *ref);
    }
  }
  if (direct_ms.empty() || proxy_ms.empty()) {
    printf("pull: no successful pulls (errors %d)\n", errors);
    return;
  }
  const double dp50 = Percentile(direct_ms, 0.5), pp50 = Percentile(proxy_ms, 0.5);
  printf("pull  (%zu each, fetch + unpack every time, errors %d)\n", direct_ms.size(), errors);
  printf("  direct to containerd      p50 %7.1f ms  p90 %7.1f ms\n", dp50,
         Percentile(direct_ms, 0.9));
  printf("  through imgseld           p50 %7.1f ms  p90 %7.1f ms\n", pp50,
         Percentile(proxy_ms, 0.9));
  printf("  ratio                     p50 %7.2fx\n", pp50 / dp50);
  if (hop_requests <= 0) return;

  // The extra hop, with the image pulled and 100 images in containerd's CRI.
  absl::Duration took;
  auto pulled = Pull(*direct, image, &took);  // ImageStatus asks for it by this name
  if (pulled.ok()) {                          // the layers the added images share
    pulled = Pull(*direct, absl::StrCat(registry->host(), "/bench@sha256:", kV3Hex), &took);
  }
  const std::string layout = absl::StrCat(IMGSEL_EXAMPLES, "/layout/blobs/sha256/");
  const std::string manifest = ReadFile(layout + kV3Hex);
  const size_t config_at = manifest.find("sha256:", manifest.find("\"config\""));
  const std::string config = ReadFile(layout + manifest.substr(config_at + 7, 64));
  absl::Status added = pulled.ok() ? AddImages((*containerd)->socket(), registry->host() + "/list",
                                               manifest, config, 99)
                                   : pulled.status();
  if (!added.ok()) {
    printf("the extra hop: skipped (%s)\n", std::string(added.message()).c_str());
    return;
  }
  // containerd's CRI learns of the new records from its events: a bounded wait.
  for (const absl::Time give_up = absl::Now() + absl::Seconds(30); absl::Now() < give_up;) {
    grpc::ClientContext ctx;
    runtime::v1::ListImagesResponse resp;
    if (direct->ListImages(&ctx, runtime::v1::ListImagesRequest(), &resp).ok() &&
        resp.images_size() >= 100) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  HopFigures((*containerd)->socket(), d, image, hop_requests);
}

}  // namespace
}  // namespace imgsel::bench

namespace imgsel::bench {

// A worst-case index: `max_bytes` at most, as many entries as fit (at most
// 10,000), every one with a platform, features and annotations.
std::string WorstIndex(size_t max_bytes, int* entries_out) {
  std::string json =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[)";
  int entries = 0;
  while (entries < 10000) {
    std::string e = absl::StrCat(
        entries ? "," : "",
        R"({"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:)",
        absl::StrFormat("%064x", entries),
        R"(","size":1024,"platform":{"os":"linux","architecture":"amd64","variant":"v3",)",
        R"("features":["avx2","fma","bmi2"]},"annotations":{"com.example.build":"b)", entries % 7,
        R"(","org.opencontainers.image.ref.name":"entry-)", entries, R"("}})");
    if (json.size() + e.size() + 2 > max_bytes) break;
    json += e;
    ++entries;
  }
  json += "]}";
  *entries_out = entries;
  return json;
}

// `clients` at once, `rounds` calls each of `select`; RSS of imgseld before,
// peak (sampled every 10 ms) and 2 s after the burst.
void MemoryBurst(const Daemon& d, const char* what, const imgsel::v1::SelectRequest& select,
                 int clients, int rounds) {
  const long before = RssKiB(d.process->pid());
  long peak = before;
  std::atomic<bool> loading{true};
  std::thread sampler([&] {
    while (loading) {
      peak = std::max(peak, RssKiB(d.process->pid()));
      absl::SleepFor(absl::Milliseconds(10));
    }
  });
  std::atomic<int> failures{0}, fallbacks{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      grpc::ChannelArguments args;
      args.SetInt("client_index", c);
      args.SetMaxReceiveMessageSize(256 << 20);
      auto stub = imgsel::v1::Selector::NewStub(
          grpc::CreateCustomChannel("unix:" + d.api, grpc::InsecureChannelCredentials(), args));
      for (int i = 0; i < rounds; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
        imgsel::v1::SelectResponse resp;
        grpc::Status st = stub->Select(&ctx, select, &resp);
        if (!st.ok()) {
          if (failures++ == 0) fprintf(stderr, "memory: %s\n", st.error_message().c_str());
        } else if (resp.fallback()) {
          if (fallbacks++ == 0)
            fprintf(stderr, "memory: fallback: %s\n", resp.fallback_reason().c_str());
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  loading = false;
  sampler.join();
  absl::SleepFor(absl::Seconds(2));
  const long after = RssKiB(d.process->pid());
  printf("memory: %s: %d clients x %d calls, %d failed, %d fallbacks\n", what, clients, rounds,
         failures.load(), fallbacks.load());
  printf("memory: %s: rss before %.1f MiB, peak %.1f MiB, 2 s after the burst %.1f MiB\n", what,
         before / 1024.0, peak / 1024.0, after / 1024.0);
}

// The worst inputs the limits allow, as many at once as the memory budget
// names (docs/RELIABILITY.md): (1) index bytes handed to the Selector API at
// kMaxIndexBytes, answered in full with the decision JSON; (2) an index a
// registry serves at the client's 4 MiB manifest cap, selected by
// reference (the path every pull takes), from a registry on loopback.
// 16 clients at once (IMGSEL_BENCH_CLIENTS=1: one selection alone).
void MemoryFigures(const std::string& dir, int rounds) {
  int clients = 16;
  if (const char* n = getenv("IMGSEL_BENCH_CLIENTS")) (void)absl::SimpleAtoi(n, &clients);
  {
    std::filesystem::create_directories(dir + "/api");
    Daemon d = StartImgseld(dir + "/api", dir + "/no-containerd.sock", dir);
    int entries = 0;
    imgsel::v1::SelectRequest select;
    select.set_index(WorstIndex(plugin::kMaxIndexBytes, &entries));
    select.set_include_decision_json(true);
    printf("memory: index bytes: %zu bytes, %d entries\n", select.index().size(), entries);
    MemoryBurst(d, "index bytes", select, clients, rounds);
  }
  {
    int entries = 0;
    const std::string index = WorstIndex(4 << 20, &entries);
    const std::string digest = Sha256Digest(index);
    registry::testing::FakeServer server([&](const registry::testing::FakeRequest& r) {
      registry::testing::FakeResponse out;
      if (r.Path() == "/v2/") return out;
      if (r.Path() == "/v2/app/manifests/v1" || r.Path() == "/v2/app/manifests/" + digest) {
        out.headers = {{"Content-Type", "application/vnd.oci.image.index.v1+json"},
                       {"Docker-Content-Digest", digest}};
        if (r.method != "HEAD")
          out.body = index;
        else
          out.headers.push_back({"Content-Length", absl::StrCat(index.size())});
        return out;
      }
      out.status = 404;
      return out;
    });
    std::filesystem::create_directories(dir + "/registry");
    // Artifacts off: their memory has caps of their own (docs/registry.md),
    // and listing 10,000 subjects would measure the registry, not imgseld.
    Daemon d = StartImgseld(dir + "/registry", dir + "/no-containerd.sock", dir, {},
                            "[compat]\nenabled = false\n");
    imgsel::v1::SelectRequest select;
    select.set_reference(absl::StrCat("127.0.0.1:", server.port(), "/app:v1"));
    select.set_include_decision_json(true);
    select.set_timeout_ms(30000);
    printf("memory: by reference: %zu bytes, %d entries\n", index.size(), entries);
    MemoryBurst(d, "by reference", select, clients, rounds);
  }
}

}  // namespace imgsel::bench

int main(int argc, char** argv) {
  int requests = 20000;
  int pulls = 20;
  int hop_requests = 2000;
  bool skip_pulls = false;
  int callgrind_calls = 0;
  int memory_rounds = 0;
  int cpu_calls = 0;
  int cpu_rounds = 5;
  std::string cpu_only;
  std::string callgrind_keep;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--memory" && i + 1 < argc) (void)absl::SimpleAtoi(argv[++i], &memory_rounds);
    if (a == "--callgrind" && i + 1 < argc) (void)absl::SimpleAtoi(argv[++i], &callgrind_calls);
    if (a == "--requests" && i + 1 < argc) (void)absl::SimpleAtoi(argv[++i], &requests);
    if (a == "--pulls" && i + 1 < argc) (void)absl::SimpleAtoi(argv[++i], &pulls);
    if (a == "--hop" && i + 1 < argc) (void)absl::SimpleAtoi(argv[++i], &hop_requests);
    if (a == "--skip-pulls") skip_pulls = true;
    if (a == "--cpu" && i + 1 < argc) (void)absl::SimpleAtoi(argv[++i], &cpu_calls);
    if (a == "--rounds" && i + 1 < argc) (void)absl::SimpleAtoi(argv[++i], &cpu_rounds);
    if (a == "--kind" && i + 1 < argc) cpu_only = argv[++i];
    if (a == "--callgrind-keep" && i + 1 < argc) callgrind_keep = argv[++i];
  }
  char tmpl[] = "/tmp/imgseld-bench-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  if (callgrind_calls > 0) {
    imgsel::bench::CallgrindFigures(dir, callgrind_calls, callgrind_keep);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return 0;
  }
  if (cpu_calls > 0) {
    imgsel::bench::CpuFigures(dir, cpu_calls, std::max(1, cpu_rounds), cpu_only);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return 0;
  }
  if (memory_rounds > 0) {
    imgsel::bench::MemoryFigures(dir, memory_rounds);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return 0;
  }
  {
    const std::string api_dir = dir + "/api";
    std::filesystem::create_directories(api_dir);
    imgsel::bench::Daemon d =
        imgsel::bench::StartImgseld(api_dir, dir + "/no-containerd.sock", dir);
    imgsel::bench::ApiFigures(d, requests);
    imgsel::bench::FloorFigures(api_dir, d, requests);
  }
  if (!skip_pulls) imgsel::bench::PullFigures(dir, pulls, hop_requests);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return 0;
}
